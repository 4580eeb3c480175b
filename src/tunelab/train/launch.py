"""Relaunch ``tunelab train`` under torchrun when several devices or nodes are asked for, or the
recipe shards with DeepSpeed or FSDP (they need the launcher's environment even on one device).

The variables are those torchrun users know: ``NPROC_PER_NODE`` (default: the visible GPUs),
``NNODES`` and ``NODE_RANK`` (default 1 and 0), ``MASTER_ADDR`` and ``MASTER_PORT`` (node 0's
address and a free port there; on one node, 127.0.0.1 and a free port).
"""

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


def wanted_nodes() -> int:
    return int(os.environ.get("NNODES", "1") or 1)


def needs_launcher(nproc: int, shards: bool) -> bool:
    """Whether this ``tunelab train`` must relaunch itself under torchrun."""
    return not already_launched() and (nproc > 1 or wanted_nodes() > 1 or shards)


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
        "--nnodes", str(wanted_nodes()),
        "--node_rank", os.environ.get("NODE_RANK", "0"),
        "--nproc_per_node", str(nproc),
        "--master_addr", os.environ.get("MASTER_ADDR", "127.0.0.1"),
        "--master_port", os.environ.get("MASTER_PORT", str(free_port())),
        "-m", "tunelab", *argv,
    ]
    nodes = wanted_nodes()
    where = f" on each of {nodes} nodes (this is node {os.environ.get('NODE_RANK', '0')})" if nodes > 1 else ""
    print(f"launching {nproc} processes{where}: {' '.join(command)}", flush=True)
    # Workers skip the output-dir guard: this parent checked it before any worker wrote there.
    child = subprocess.Popen(command, env={**os.environ, "TUNELAB_LAUNCHED": "1"})
    # A Ctrl-C or SIGTERM is passed on (torchrun hands it to every worker, which saves a
    # checkpoint and stops); this parent waits for that instead of killing them mid-save.
    received: list[int] = []

    def forward(signum: int, frame: object) -> None:
        received.append(signum)
        child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:  # torchrun reports the signal as its own failure; the workers stopped as asked
        print(f"stopped by {signal.Signals(received[0]).name} (see the run's manifest for the "
              "checkpoint written)", file=sys.stderr, flush=True)
        return 130
    return code
