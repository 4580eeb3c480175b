"""API serving: generated tokens/s with 1, 4 and 16 concurrent clients, or (``--compare-batching``)
request latency under continuous vs dynamic batching.

Default mode: starts ``tunelab api`` twice on the same model: once batching (``max_batch_size``
16, the default ``batching``) and once one request at a time (``max_batch_size=1`` with
``batch_slice_tokens=0``, so a request runs to its end before the next starts: the baseline).
Each client is an ``openai.AsyncOpenAI`` streaming chat completions with greedy decoding and a
fixed ``max_tokens``; throughput is total completion tokens (from the usage counts) over wall
time. Prints one JSON line per (server, clients) run, then the batched / one-at-a-time ratio.

``--compare-batching``: ``--rounds`` times, a ``batching=continuous`` and a ``batching=dynamic``
server in turn (same ``max_batch_size``, ``batch_wait_ms`` and ``batch_slice_tokens``), each
driven by 16 clients that send ``--requests`` streaming requests back to back, with answer
lengths cycling through ``--lengths`` (so answers end at different steps). Per request:
latency (sent to last chunk) and time to first token; printed as percentiles, then the
dynamic / continuous ratios::

    python bench/bench_serve.py                          # tunelab/bench-chat (~30M params) on CPU
    python bench/bench_serve.py --model DIR --requests 4 --max-tokens 128
    python bench/bench_serve.py --compare-batching --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
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


def start_server(model: str, port: int, batch: int, threads: int, wait_ms: float,
                 keys: tuple[str, ...] = ()) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "tunelab", "api", "--model", model, "--port", str(port),
           f"max_batch_size={batch}", f"batch_wait_ms={wait_ms}", "do_sample=false", *keys]
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


async def timed_requests(client, model: str, index: int, requests: int, lengths: list[int]) -> list[dict]:
    """One client's requests, back to back: latency, time to first token, tokens."""
    timings = []
    for r in range(requests):
        question = QUESTIONS[(index + r) % len(QUESTIONS)]
        start = time.perf_counter()
        first, tokens = None, 0
        stream = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": question}], temperature=0,
            max_tokens=lengths[(index * 7 + r) % len(lengths)], stream=True,
            stream_options={"include_usage": True})
        async for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter()
            if chunk.usage:
                tokens = chunk.usage.completion_tokens
        end = time.perf_counter()
        timings.append({"latency": end - start, "ttft": (first or end) - start, "tokens": tokens})
    return timings


def percentiles(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": round(cuts[49], 2), "p90": round(cuts[89], 2), "p99": round(cuts[98], 2),
            "max": round(max(values), 2)}


async def latency_run(port: int, opts: argparse.Namespace, lengths: list[int]) -> dict:
    import openai

    client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none",
                                max_retries=0, timeout=3600)
    model = (await client.models.list()).data[0].id
    await client_loop(client, model, 0, 1, 4)  # warm-up
    start = time.perf_counter()
    per_client = await asyncio.gather(*(timed_requests(client, model, i, opts.requests, lengths)
                                        for i in range(opts.compare_clients)))
    wall = time.perf_counter() - start
    await client.close()
    timings = [t for client_timings in per_client for t in client_timings]
    tokens = sum(t["tokens"] for t in timings)
    return {"requests": len(timings), "completion_tokens": tokens, "wall_s": round(wall, 2),
            "tokens_per_s": round(tokens / wall, 1),
            "latency_s": percentiles([t["latency"] for t in timings]),
            "ttft_s": percentiles([t["ttft"] for t in timings])}


def compare_batching(opts: argparse.Namespace) -> None:
    """Continuous vs dynamic batching, interleaved rounds, one JSON line each, then ratios."""
    lengths = [int(n) for n in opts.lengths.split(",")]
    results: dict[str, list[dict]] = {"continuous": [], "dynamic": []}
    for round_no in range(1, opts.rounds + 1):
        for mode in ("continuous", "dynamic"):
            port = free_port()
            proc = start_server(opts.model, port, 16, opts.threads, opts.batch_wait_ms,
                                (f"batching={mode}", f"batch_slice_tokens={opts.slice_tokens}"))
            try:
                before = batching(port)
                result = asyncio.run(latency_run(port, opts, lengths))
                after = batching(port)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            steps = after["steps"] - before["steps"]
            result.update(server=mode, round=round_no, clients=opts.compare_clients,
                          mean_rows_per_step=round((after["step_rows"] - before["step_rows"]) / max(steps, 1), 1),
                          lengths=lengths, batch_slice_tokens=opts.slice_tokens,
                          batch_wait_ms=opts.batch_wait_ms, model=opts.model, threads=opts.threads,
                          load_avg=round(os.getloadavg()[0], 1))
            print(json.dumps(result), flush=True)
            results[mode].append(result)
    for cont, dyn in zip(results["continuous"], results["dynamic"]):
        print(json.dumps({"round": cont["round"], "dynamic_over_continuous": {
            f"{what}_{p}": round(dyn[what][p] / cont[what][p], 2)
            for what in ("latency_s", "ttft_s") for p in ("p50", "p90", "p99", "max")},
            "continuous_over_dynamic_tokens_per_s": round(cont["tokens_per_s"] / dyn["tokens_per_s"], 2)}),
            flush=True)


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
    parser.add_argument("--compare-batching", action="store_true",
                        help="latency of continuous vs dynamic batching (see above)")
    parser.add_argument("--compare-clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1, help="--compare-batching: rounds")
    parser.add_argument("--lengths", default="16,96,32,128,8,64",
                        help="--compare-batching: max_tokens of successive requests")
    parser.add_argument("--slice-tokens", type=int, default=32,
                        help="--compare-batching: batch_slice_tokens of both servers (the default)")
    opts = parser.parse_args()
    if opts.compare_batching:
        compare_batching(opts)
        return
    levels = [int(c) for c in opts.clients.split(",")]
    batched = run_server("batched", opts, 16, levels)
    single = run_server("one_at_a_time", opts, 1, [int(c) for c in opts.baseline_clients.split(",")])
    for clients in sorted(set(batched) & set(single)):
        ratio = batched[clients]["tokens_per_s"] / single[clients]["tokens_per_s"]
        print(json.dumps({"clients": clients, "batched_over_one_at_a_time": round(ratio, 2)}), flush=True)


if __name__ == "__main__":
    main()
