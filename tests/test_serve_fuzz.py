"""A bounded fuzz run of the live API: schemathesis generates requests from the server's own
/openapi.json, and a list of malformed bodies covers what a schema cannot describe (broken
JSON, broken UTF-8, lone surrogates, absurd numbers, deep nesting). No answer may be a 5xx, and
every error has OpenAI's shape.

The server runs the tiny model with small limits (4 tokens per answer, 2 answers per request),
so each generated request costs milliseconds and the whole run stays well under a minute.
"""

from __future__ import annotations

import json

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from test_infer_support import free_port, start_api, stop

KEY = "fuzz-key-789"
AUTH = {"Authorization": f"Bearer {KEY}"}
ERROR_FIELDS = {"message", "type", "param", "code"}


@pytest.fixture(scope="module")
def fuzz_port(tiny_chat_path):
    port = free_port()
    proc = start_api(["--model", str(tiny_chat_path), "max_new_tokens=4", "batch_wait_ms=5",
                      "--max-answer-tokens", "4", "--max-choices", "2", "--max-prompt-tokens", "256",
                      "--max-request-bytes", "65536"], port, api_key=KEY)
    yield port
    stop(proc)


@pytest.fixture(scope="module")
def api_schema(fuzz_port):
    return schemathesis.openapi.from_url(f"http://127.0.0.1:{fuzz_port}/openapi.json", headers=AUTH)


def check_answer(status: int, content_type: str, text: str) -> None:
    """No 5xx; an error is OpenAI-shaped; a stream carries no server error either."""
    assert status < 500, text[:500]
    if status >= 400:
        assert set(json.loads(text)["error"]) == ERROR_FIELDS, text[:500]
    if content_type.startswith("text/event-stream"):
        events = [json.loads(line[6:]) for line in text.splitlines()
                  if line.startswith("data: {")]
        assert not [e for e in events if e.get("error", {}).get("type") == "server_error"], text[:500]


def test_schema_fuzzing_finds_no_server_error(api_schema, fuzz_port):
    """50 generated requests per operation of /openapi.json (six operations)."""
    from hypothesis import given

    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/chat/completions", "/v1/completions", "/"}
    statuses: dict[str, list[int]] = {}
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=50, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def fuzz(case) -> None:
            response = case.call(base_url=f"http://127.0.0.1:{fuzz_port}", headers=AUTH, timeout=60)
            content_type = response.headers.get("content-type") or [""]  # schemathesis: a list
            check_answer(response.status_code, content_type[0], response.text)
            statuses.setdefault(operation.path, []).append(response.status_code)

        fuzz()
    print({path: sorted(set(codes)) for path, codes in statuses.items()})
    # The fuzzing reached generation, not only validation errors.
    assert all(200 in statuses[path] for path in ("/v1/chat/completions", "/v1/completions", "/"))


def _deep(levels: int) -> bytes:
    return b'{"messages": ' + b"[" * levels + b"]" * levels + b"}"


MALFORMED = [
    b"", b"{", b"[]", b"null", b"42", b'"text"', b"\xff\xfe\xfd", b"\xef\xbb\xbf{}",
    b'{"messages": "hi"}', b'{"messages": [null]}', b'{"messages": [{"role": "user"}]}',
    b'{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}',
    b'{"messages": [{"role": "user", "content": "\\ud800"}]}',
    b'{"messages": [{"role": "user", "content": "\\udc00\\ud800"}], "model": "\\udfff"}',
    b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1e400}',
    b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": ' + b"9" * 5000 + b"}",
    b'{"messages": [{"role": "user", "content": "hi"}], "seed": ' + b"9" * 30 + b"}",
    b'{"messages": [{"role": "user", "content": "hi"}], "temperature": -0.0, "top_p": 1e-320}',
    b'{"messages": [{"role": "user", "content": "hi"}], "stop": ["", "", ""]}',
    b'{"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}]}',
    b'{"messages": [{"role": "user", "content": "hi"}], "chat_template_kwargs": {"x": [1, {}]}}',
    b'{"messages": [{"role": "tool", "content": "hi"}]}',
    b'{"prompt": []}', b'{"prompt": [""]}', b'{"prompt": "", "echo": true}',
    b'{"prompt": "a", "n": 0}', b'{"prompt": ["a", "b", "c"]}', b'{"prompt": "a", "stream": true, "n": 2}',
    b'{"prompt": "hi", "history": [["a"]]}', b'{"prompt": "hi", "history": [{"role": "user"}]}',
    b'{"prompt": "hi", "history": [{"role": "assistant", "content": "x"}], "max_length": 1}',
    b'{"prompt": "' + "\u4f60".encode() * 20000 + b'"}',
    _deep(100_000), _deep(50),
]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions", "/"])
def test_malformed_bodies_are_client_errors(fuzz_port, path):
    with httpx.Client(base_url=f"http://127.0.0.1:{fuzz_port}", headers=AUTH, timeout=60) as client:
        for body in MALFORMED:
            response = client.post(path, content=body, headers={"Content-Type": "application/json"})
            check_answer(response.status_code, response.headers.get("content-type", ""), response.text)
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
            response = client.post(path, content=b'{"prompt": "hi"}', headers={"Content-Type": content_type})
            check_answer(response.status_code, response.headers.get("content-type", ""), response.text)
        assert client.get("/v1/models").status_code == 200  # the same connection, still served


def test_odd_headers_and_paths_are_client_errors(fuzz_port):
    odd = [{"Authorization": "Bearer \u00e9\u00e8".encode("latin-1")}, {"Authorization": b"Bearer"},
           {"Authorization": b"Basic " + b"x" * 10000}, {"Authorization": b""}]
    with httpx.Client(base_url=f"http://127.0.0.1:{fuzz_port}", timeout=60) as client:
        for headers in odd:
            response = client.get("/v1/models", headers=headers)
            assert response.status_code == 401
            check_answer(response.status_code, response.headers["content-type"], response.text)
        for path in ["/v1/models/%ED%A0%80", "/v1/models/%FF", "/v1/models/" + "a" * 5000, "/%00"]:
            response = client.get(path, headers=AUTH)
            check_answer(response.status_code, response.headers.get("content-type", ""), response.text)
