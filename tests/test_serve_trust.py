"""What fuzzing and fault probes found in the API, kept as tests: extreme values and broken text
are 4xx (or work), limits hold, a failing request fails alone, a long request cannot starve a
short one, a client that leaves stops its work, and nobody is served by accident.

A live `tunelab api` subprocess on 127.0.0.1 serves the model that learned 16 distinct answers,
a random LoRA adapter (long, never-ending answers) and a NaN adapter (a diverged run).
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time

import openai
import pytest
from test_infer_support import (
    PAIRS,
    built_once,
    child_env,
    free_port,
    nan_lora_adapter,
    random_lora_adapter,
    start_api,
    stop,
    train_distinct_answers,
)

KEY = "trust-key-456"
LIMITS = ["--max-prompt-tokens", "256", "--max-answer-tokens", "2000", "--max-choices", "8",
          "--max-request-bytes", "65536"]


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_chat_path):
    base = built_once(tmp_path_factory, "distinct", lambda out: train_distinct_answers(tiny_chat_path, out))
    rand = built_once(tmp_path_factory, "adapter", lambda out: random_lora_adapter(base, out))
    nan = built_once(tmp_path_factory, "nan-adapter", lambda out: nan_lora_adapter(base, out))
    return base, rand, nan


@pytest.fixture(scope="module")
def server(models):
    base, rand, nan = models
    port = free_port()
    proc = start_api(["--model", str(base), "--adapter", str(rand), "--adapter", str(nan),
                      "do_sample=false", "max_new_tokens=24", "batch_wait_ms=30",
                      "batch_slice_tokens=8", *LIMITS], port, api_key=KEY)
    yield port
    stop(proc)


class Connection:
    """One keep-alive HTTP connection; ``socket_changed`` tells whether the server dropped it."""

    def __init__(self, port: int, key: str | bytes | None = KEY):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.key = key
        self.conn.connect()
        self.sock = self.conn.sock

    def send(self, method: str, path: str, body: bytes | dict | None = None) -> tuple[int, dict]:
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.key:
            token = self.key if isinstance(self.key, bytes) else self.key.encode()
            headers["Authorization"] = b"Bearer " + token
        self.conn.request(method, path, body=body, headers=headers)
        reply = self.conn.getresponse()
        return reply.status, json.loads(reply.read() or b"null")

    @property
    def socket_changed(self) -> bool:
        return self.conn.sock is not self.sock

    def close(self) -> None:
        self.conn.close()


def ask(question: str) -> list[dict]:
    return [{"role": "user", "content": question}]


def health(port: int) -> dict:
    conn = Connection(port, key=None)
    try:
        return conn.send("GET", "/health")[1]
    finally:
        conn.close()


LONE = '"\\ud800"'  # a JSON escape of a lone surrogate: valid JSON, not valid Unicode
BAD_BODIES = [
    ({"messages": ask("hi"), "seed": 2 ** 64}, 422, "seed"),
    ({"messages": ask("hi"), "seed": -(2 ** 63) - 1}, 422, "seed"),
    ({"messages": ask("hi"), "temperature": 2.5}, 422, "temperature"),
    ({"messages": ask("hi"), "max_tokens": 2001}, 400, "max_tokens"),
    ({"messages": ask("hi"), "max_completion_tokens": 10 ** 30}, 400, "max_completion_tokens"),
    ({"messages": ask("hi"), "n": 9}, 400, "n"),
    ({"messages": ask("colour " * 300)}, 400, "messages"),
    (b'{"messages": [{"role": "user", "content": ' + LONE.encode() + b'}]}', 400, "messages.0.content"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "model": ' + LONE.encode() + b'}', 400, "model"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "stop": [' + LONE.encode() + b']}', 400, "stop.0"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": '
     b'{"name": "f", "parameters": {"properties": {' + LONE.encode() + b': 1}}}}]}', 400,
     "tools.0.function.parameters.properties"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', 422, "temperature"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "repetition_penalty": Infinity}', 422,
     "repetition_penalty"),
]


def test_bad_values_are_4xx_on_a_connection_that_stays_open(server):
    conn = Connection(server)
    try:
        for body, status, param in BAD_BODIES:
            got, reply = conn.send("POST", "/v1/chat/completions", body)
            assert (got, reply["error"]["param"]) == (status, param), (body, reply)
            assert set(reply["error"]) == {"message", "type", "param", "code"}
        got, reply = conn.send("POST", "/v1/completions", b'{"prompt": ' + LONE.encode() + b"}")
        assert got == 400 and reply["error"]["code"] == "invalid_unicode"
        assert conn.send("GET", "/v1/models")[0] == 200
        assert not conn.socket_changed  # every error above left the keep-alive connection usable
    finally:
        conn.close()


@pytest.mark.parametrize("extreme", [{"temperature": 1e-40}, {"temperature": 5e-324},
                                     {"top_p": 5e-324, "temperature": 1.0},
                                     {"repetition_penalty": 1e-40}, {"repetition_penalty": 5e-324},
                                     {"seed": 2 ** 63 - 1, "n": 2, "temperature": 1.0}])
def test_values_near_the_edge_of_their_range_work(server, models, extreme):
    conn = Connection(server)
    try:
        status, reply = conn.send("POST", "/v1/chat/completions",
                                  {"model": models[0].name, "messages": ask(PAIRS[2][0]), **extreme})
    finally:
        conn.close()
    assert status == 200, reply
    if "repetition_penalty" not in extreme and "seed" not in extreme:
        # A temperature or nucleus near zero keeps only the best token: the greedy answer.
        assert reply["choices"][0]["message"]["content"] == PAIRS[2][1]
    assert all(c["finish_reason"] in ("stop", "length") for c in reply["choices"])


def test_a_non_ascii_api_key_is_a_401(server):
    conn = Connection(server, key="cl\u00e9-\u00fc".encode("latin-1"))
    try:
        status, reply = conn.send("GET", "/v1/models")
        assert status == 401 and reply["error"]["code"] == "invalid_api_key"
        assert not conn.socket_changed
    finally:
        conn.close()


def test_a_body_over_the_limit_is_413_and_the_server_stays_responsive(server, models):
    conn = Connection(server)
    try:
        big = {"messages": ask("x" * 70_000)}
        status, reply = conn.send("POST", "/v1/chat/completions", big)
        assert status == 413 and reply["error"]["code"] == "request_too_large"
        assert "65536" in reply["error"]["message"]
        status, reply = conn.send("POST", "/v1/chat/completions", {"model": models[0].name,
                                                                   "messages": ask(PAIRS[3][0])})
        assert status == 200 and reply["choices"][0]["message"]["content"] == PAIRS[3][1]
    finally:
        conn.close()
    assert health(server)["limits"] == {"prompt_tokens": 256, "answer_tokens": 2000, "choices": 8,
                                        "request_bytes": 65536}


def test_prompts_times_n_is_limited(server):
    conn = Connection(server)
    try:
        status, reply = conn.send("POST", "/v1/completions", {"prompt": ["a", "b", "c"], "n": 3})
        assert status == 400 and reply["error"]["code"] == "limit_exceeded"
        assert "9 answers" in reply["error"]["message"]
    finally:
        conn.close()


def test_a_failing_multi_prompt_request_fails_alone_and_leaks_nothing(server, models):
    conn = Connection(server)
    try:
        status, reply = conn.send("POST", "/v1/completions", {"model": models[2].name,
                                                              "prompt": ["Alice", "Bob", "Carol"]})
        assert status == 503 and reply["error"]["code"] == "model_error"
        assert "NaN" in reply["error"]["message"] and models[2].name in reply["error"]["message"]
        assert not conn.socket_changed
    finally:
        conn.close()
    deadline = time.monotonic() + 10
    while health(server)["active_requests"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert health(server)["active_requests"] == 0


def test_one_bad_request_in_a_batch_fails_only_itself(server, models):
    """Requests to the NaN adapter (sampling and greedy) share batches with innocent ones
    (PEFT mixed batches); only they fail."""
    base, _, nan = models
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{server}/v1", api_key=KEY, max_retries=0)
    bad = {i for i in range(32) if i % 8 in (3, 4)}
    results: dict[int, object] = {}

    def one(i: int) -> None:
        try:
            reply = client.chat.completions.create(model=nan.name if i in bad else base.name,
                                                   messages=ask(PAIRS[i % len(PAIRS)][0]),
                                                   temperature=1.0 if i % 2 else 0)
            results[i] = reply.choices[0].message.content
        except openai.APIStatusError as exc:
            results[i] = exc.status_code

    before = health(server)["batching"]["largest_batch"]
    threads = [threading.Thread(target=one, args=(i,)) for i in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {results[i] for i in bad} == {503}, results
    greedy = {i: results[i] for i in range(32) if i not in bad and i % 2 == 0}
    assert greedy == {i: PAIRS[i % len(PAIRS)][1] for i in greedy}  # the trained answers
    sampled = [results[i] for i in range(32) if i not in bad and i % 2]
    assert all(isinstance(text, str) for text in sampled), results
    assert max(before, health(server)["batching"]["largest_batch"]) >= 4


def _wait_until_active(port: int) -> None:
    deadline = time.monotonic() + 20
    while not health(port)["active_requests"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert health(port)["active_requests"] == 1


def _long_request(model: str) -> dict:
    """Greedy decoding of the random adapter never ends by itself: 4 answers x 1000 tokens."""
    return {"model": model, "prompt": "Bob", "max_tokens": 1000, "n": 4, "temperature": 0}


def test_a_long_request_does_not_starve_a_short_one(server, models):
    finished: dict[str, object] = {}

    def long_one() -> None:
        conn = Connection(server)
        try:
            finished["reply"] = conn.send("POST", "/v1/completions", _long_request(models[1].name))
        finally:
            conn.close()
            finished["long"] = time.monotonic()

    thread = threading.Thread(target=long_one)
    thread.start()
    _wait_until_active(server)
    time.sleep(0.2)
    yields = health(server)["batching"]["yields"]
    conn = Connection(server)
    try:
        start = time.monotonic()
        status, reply = conn.send("POST", "/v1/chat/completions", {"model": models[0].name,
                                                                   "messages": ask(PAIRS[5][0])})
        short_done = time.monotonic()
    finally:
        conn.close()
    thread.join()
    assert status == 200 and reply["choices"][0]["message"]["content"] == PAIRS[5][1]
    long_status, long_reply = finished["reply"]
    assert long_status == 200 and long_reply["usage"]["completion_tokens"] == 4000
    assert short_done < finished["long"], "the short request waited for the long one to finish"
    assert health(server)["batching"]["yields"] > yields
    print(f"short request: {short_done - start:.2f}s; long finished "
          f"{finished['long'] - short_done:.2f}s later")


def test_a_non_streaming_client_that_disconnects_cancels_its_work(server, models):
    body = {**_long_request(models[1].name), "max_tokens": 1900, "n": 8}
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=30)
    conn.request("POST", "/v1/completions", body=json.dumps(body),
                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
    _wait_until_active(server)
    conn.close()  # the client gives up without reading the answer
    gone = time.monotonic()
    while health(server)["active_requests"] and time.monotonic() < gone + 3:
        time.sleep(0.1)
    assert health(server)["active_requests"] == 0  # 8 x 1900 tokens take far longer than 3 s
    again = Connection(server)
    try:
        status, reply = again.send("POST", "/v1/chat/completions", {"model": models[0].name,
                                                                    "messages": ask(PAIRS[6][0])})
    finally:
        again.close()
    assert status == 200 and reply["choices"][0]["message"]["content"] == PAIRS[6][1]


def test_docs_and_schema_need_the_key(server):
    anonymous = Connection(server, key=None)
    keyed = Connection(server)
    try:
        assert anonymous.send("GET", "/openapi.json")[0] == 401
        assert anonymous.send("GET", "/docs")[0] == 401
        status, schema = keyed.send("GET", "/openapi.json")
        assert status == 200 and "/v1/chat/completions" in schema["paths"]
        keyed.conn.request("GET", "/docs", headers={"Authorization": f"Bearer {KEY}"})
        page = keyed.conn.getresponse()
        assert page.status == 200 and b"swagger" in page.read().lower()
    finally:
        anonymous.close()
        keyed.close()


def _api(args: list[str]) -> subprocess.CompletedProcess:
    env = child_env()
    env.pop("TUNELAB_API_KEY", None)
    return subprocess.run([sys.executable, "-m", "tunelab", "api", *args], capture_output=True,
                          text=True, env=env, timeout=120)


@pytest.mark.parametrize("args, flag", [(["--host", "0.0.0.0"], "--host"),
                                        (["--api-key", ""], "--api-key")])
def test_serving_everyone_needs_to_be_said_explicitly(tmp_path, args, flag):
    done = _api(["--model", str(tmp_path / "never-loaded"), "--port", str(free_port()), *args])
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"tunelab config error: {flag}:") and "--allow-unauthenticated" in done.stderr
    assert "Traceback" not in done.stderr


def test_allow_unauthenticated_serves_without_a_key_and_no_docs_removes_them(tiny_chat_path):
    port = free_port()
    proc = start_api(["--model", str(tiny_chat_path), "--api-key", "", "--allow-unauthenticated",
                      "--no-docs"], port)
    try:
        conn = Connection(port, key=None)
        assert conn.send("GET", "/v1/models")[0] == 200
        assert conn.send("GET", "/openapi.json")[0] == 404
        assert conn.send("GET", "/docs")[0] == 404
        conn.close()
    finally:
        stop(proc)
