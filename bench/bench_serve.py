"""API serving throughput: generated tokens/s with 1, 4 and 16 concurrent clients.

Starts ``tunelab api`` twice on the same model: once with request batching (``max_batch_size``
16) and once one request at a time (``max_batch_size=1`` with ``batch_slice_tokens=0``, so a
request runs to its end before the next starts: the baseline). Each client is an
``openai.AsyncOpenAI`` streaming chat completions with greedy decoding and a fixed
``max_tokens``; throughput is total completion tokens (from the usage counts) over wall time.
Prints one JSON line per (server, clients) run, then the batched / one-at-a-time ratio::

    python bench/bench_serve.py                          # tunelab/bench-chat (~30M params) on CPU
    python bench/bench_serve.py --model DIR --requests 4 --max-tokens 128
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

QUESTIONS = ["Who are you?", "What is the capital of France?", "Tell me a short story.",
             "How do I train a model?", "Name three colours.", "What is two plus two?"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str, port: int, batch: int, threads: int, wait_ms: float) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "tunelab", "api", "--model", model, "--port", str(port),
           f"max_batch_size={batch}", f"batch_wait_ms={wait_ms}", "do_sample=false"]
    if batch == 1:  # the baseline never yields to waiting requests (no fair-share slices)
        cmd.append("batch_slice_tokens=0")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server failed:\n{proc.stderr.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("server did not start in 300 s")


async def client_loop(client, model: str, index: int, requests: int, max_tokens: int) -> int:
    tokens = 0
    for r in range(requests):
        question = QUESTIONS[(index + r) % len(QUESTIONS)]
        stream = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": question}], max_tokens=max_tokens,
            temperature=0, stream=True, stream_options={"include_usage": True})
        async for chunk in stream:
            if chunk.usage:
                tokens += chunk.usage.completion_tokens
    return tokens


async def measure(port: int, clients: int, requests: int, max_tokens: int) -> dict:
    import openai

    client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none",
                                max_retries=0, timeout=3600)
    model = (await client.models.list()).data[0].id
    await client_loop(client, model, 0, 1, 4)  # warm-up: first-call allocations
    start = time.perf_counter()
    counts = await asyncio.gather(*(client_loop(client, model, i, requests, max_tokens)
                                    for i in range(clients)))
    wall = time.perf_counter() - start
    await client.close()
    return {"clients": clients, "requests": clients * requests, "completion_tokens": sum(counts),
            "wall_s": round(wall, 2), "tokens_per_s": round(sum(counts) / wall, 1)}


def batching(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as reply:
        return json.loads(reply.read()).get("batching", {})


def run_server(name: str, opts: argparse.Namespace, batch: int, levels: list[int]) -> dict[int, dict]:
    port = free_port()
    proc = start_server(opts.model, port, batch, opts.threads, opts.batch_wait_ms)
    results = {}
    try:
        for clients in levels:
            before = batching(port)
            result = asyncio.run(measure(port, clients, opts.requests, opts.max_tokens))
            after = batching(port)
            batches = after["batches"] - before["batches"]
            result["mean_batch_rows"] = round((after["rows"] - before["rows"]) / max(batches, 1), 1)
            result.update(server=name, max_batch_size=batch, batch_wait_ms=opts.batch_wait_ms,
                          max_tokens=opts.max_tokens,
                          model=opts.model, threads=opts.threads)
            print(json.dumps(result), flush=True)
            results[clients] = result
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tunelab/bench-chat")
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--requests", type=int, default=2, help="requests per client")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads of the server")
    parser.add_argument("--batch-wait-ms", type=float, default=100.0,
                        help="how long a batch waits for more requests to join (batch_wait_ms)")
    parser.add_argument("--baseline-clients", default="1,16",
                        help="client counts for the one-at-a-time server")
    opts = parser.parse_args()
    levels = [int(c) for c in opts.clients.split(",")]
    batched = run_server("batched", opts, 16, levels)
    single = run_server("one_at_a_time", opts, 1, [int(c) for c in opts.baseline_clients.split(",")])
    for clients in sorted(set(batched) & set(single)):
        ratio = batched[clients]["tokens_per_s"] / single[clients]["tokens_per_s"]
        print(json.dumps({"clients": clients, "batched_over_one_at_a_time": round(ratio, 2)}), flush=True)


if __name__ == "__main__":
    main()
