"""Relaunch ``tunelab train`` under torchrun when several devices are visible or asked for."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys


def wanted_processes() -> int:
    """NPROC_PER_NODE if set, else the number of visible CUDA devices (1 on CPU)."""
    if os.environ.get("NPROC_PER_NODE"):
        return int(os.environ["NPROC_PER_NODE"])
    try:
        import torch

        return max(torch.cuda.device_count(), 1)
    except Exception:
        return 1


def already_launched() -> bool:
    return "LOCAL_RANK" in os.environ


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def relaunch(argv: list[str], nproc: int) -> int:
    """Run ``python -m torch.distributed.run -m tunelab <argv>`` with nproc processes; its exit code."""
    command = [
        sys.executable, "-m", "torch.distributed.run",
        "--nnodes", os.environ.get("NNODES", "1"),
        "--node_rank", os.environ.get("NODE_RANK", "0"),
        "--nproc_per_node", str(nproc),
        "--master_addr", os.environ.get("MASTER_ADDR", "127.0.0.1"),
        "--master_port", os.environ.get("MASTER_PORT", str(free_port())),
        "-m", "tunelab", *argv,
    ]
    print(f"launching {nproc} processes: {' '.join(command)}", flush=True)
    # Workers skip the output-dir guard: this parent checked it before any worker wrote there.
    child = subprocess.Popen(command, env={**os.environ, "TUNELAB_LAUNCHED": "1"})
    # A Ctrl-C or SIGTERM is passed on (torchrun hands it to every worker, which saves a
    # checkpoint and stops); this parent waits for that instead of killing them mid-save.
    forward = lambda signum, frame: child.send_signal(signum)  # noqa: E731
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
