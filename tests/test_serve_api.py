"""A live `tunelab api` subprocess on 127.0.0.1, driven by the official openai client."""

from __future__ import annotations

import asyncio
import http.client
import json
import time

import openai
import pytest
from test_infer_support import (
    PAIRS,
    built_once,
    free_port,
    random_lora_adapter,
    start_api,
    stop,
    train_distinct_answers,
)

KEY = "test-key-123"
ORIGIN = "http://allowed.example"


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_chat_path):
    base = built_once(tmp_path_factory, "distinct", lambda out: train_distinct_answers(tiny_chat_path, out))
    adapter = built_once(tmp_path_factory, "adapter", lambda out: random_lora_adapter(base, out))
    return base, adapter


@pytest.fixture(scope="module")
def server(models):
    base, adapter = models
    port = free_port()
    proc = start_api(["--model", str(base), "--adapter", str(adapter), "do_sample=false",
                      "max_new_tokens=24", "batch_wait_ms=30", "--cors-origins", ORIGIN], port,
                     api_key=KEY)
    yield port
    stop(proc)


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"http://127.0.0.1:{server}/v1", api_key=KEY, max_retries=0)


def ask(question: str) -> list[dict]:
    return [{"role": "user", "content": question}]


def raw(port: int, method: str, path: str, body: bytes | dict | None = None, key: str | None = KEY,
        headers: dict | None = None, reply_headers: bool = False):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    sent = {"Content-Type": "application/json", **(headers or {})}
    if key:
        sent["Authorization"] = f"Bearer {key}"
    conn.request(method, path, body=json.dumps(body) if isinstance(body, dict) else body, headers=sent)
    reply = conn.getresponse()
    data = reply.read()
    parsed = json.loads(data) if data.startswith((b"{", b"[")) else data.decode()
    return (reply.status, parsed, dict(reply.getheaders())) if reply_headers else (reply.status, parsed)


def test_models_lists_the_real_names(client, models):
    base, adapter = models
    assert [m.id for m in client.models.list().data] == [base.name, adapter.name]


def test_chat_equals_the_engines_direct_greedy_output(client, models):
    from tunelab.config import load_config
    from tunelab.infer import create_engine

    engine = create_engine(load_config(None, [f"model_name_or_path={models[0]}", "max_new_tokens=24"]))
    try:
        direct = engine.chat(ask(PAIRS[4][0]), do_sample=False)
    finally:
        engine.close()
    reply = client.chat.completions.create(model=models[0].name, messages=ask(PAIRS[4][0]), temperature=0)
    assert reply.choices[0].message.content == direct == PAIRS[4][1]
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.completion_tokens > 0 and reply.usage.prompt_tokens > 10
    assert reply.model == models[0].name


def test_streaming_chat_and_usage(client, models):
    stream = client.chat.completions.create(model=models[0].name, messages=ask(PAIRS[5][0]),
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == PAIRS[5][1]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens > 0


def test_n_stop_and_max_tokens(client, models):
    reply = client.chat.completions.create(model=models[0].name, messages=ask(PAIRS[6][0]), n=2,
                                           temperature=0, stop=["likes"])
    assert [c.message.content for c in reply.choices] == ["Grace ", "Grace "]
    short = client.chat.completions.create(model=models[0].name, messages=ask(PAIRS[6][0]),
                                           max_completion_tokens=1)
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens == 1


def test_completions(client, models):
    reply = client.completions.create(model=models[0].name, prompt="Alice likes", max_tokens=5,
                                      temperature=0)
    assert reply.object == "text_completion" and reply.usage.completion_tokens <= 5
    streamed = client.completions.create(model=models[0].name, prompt="Alice likes", max_tokens=5,
                                         temperature=0, stream=True)
    assert "".join(c.choices[0].text for c in streamed) == reply.choices[0].text


def test_adapter_is_picked_by_name(client, models):
    base, adapter = models
    tuned = client.chat.completions.create(model=adapter.name, messages=ask(PAIRS[0][0]), temperature=0)
    plain = client.chat.completions.create(model=base.name, messages=ask(PAIRS[0][0]), temperature=0)
    assert plain.choices[0].message.content == PAIRS[0][1]
    assert tuned.choices[0].message.content != PAIRS[0][1] and tuned.model == adapter.name


def test_auth_is_required(server):
    anonymous = openai.OpenAI(base_url=f"http://127.0.0.1:{server}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        anonymous.models.list()
    assert info.value.body["code"] == "invalid_api_key"
    assert raw(server, "GET", "/health", key=None)[0] == 200


@pytest.mark.parametrize("body, status, param", [
    ({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}, 404, "model"),
    ({"messages": []}, 400, "messages"),
    ({"messages": [{"role": "assistant", "content": "hi"}]}, 400, "messages.0.role"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}, 400,
     "messages.1.role"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": -1}, 422, "max_tokens"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, 422, "messages.0.role"),
    ({"messages": [{"role": "user", "content": "hi " * 3000}]}, 400, "messages"),
])
def test_bad_requests_get_openai_shaped_errors(server, body, status, param):
    got, reply = raw(server, "POST", "/v1/chat/completions", json.dumps(body).encode())
    assert got == status, reply
    assert set(reply["error"]) == {"message", "type", "param", "code"}
    assert reply["error"]["param"] == param


def test_body_that_is_not_json_and_unknown_routes(server, client):
    status, reply = raw(server, "POST", "/v1/chat/completions", b"{not json")
    assert status == 400 and reply["error"]["code"] == "invalid_json"
    assert raw(server, "GET", "/v1/nothing")[0] == 404
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="missing", messages=ask("hi"))
    assert client.models.list().data  # still alive


def test_score_on_a_chat_server_says_how_to_serve_a_reward_model(server):
    status, reply = raw(server, "POST", "/v1/score", json.dumps({"input": ["hi"]}).encode())
    assert status == 400 and reply["error"]["code"] == "no_reward_model"
    assert "tunelab api --adapter RM_RUN" in reply["error"]["message"]


def test_sixteen_concurrent_streams_each_get_their_own_answer(server, models):
    async def one(aclient, question: str) -> str:
        stream = await aclient.chat.completions.create(model=models[0].name, messages=ask(question),
                                                       stream=True, temperature=0)
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    async def all_of_them() -> list[str]:
        aclient = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{server}/v1", api_key=KEY, max_retries=0)
        try:
            return await asyncio.gather(*(one(aclient, q) for q, _ in PAIRS))
        finally:
            await aclient.close()

    assert asyncio.run(all_of_them()) == [a for _, a in PAIRS]
    assert raw(server, "GET", "/health")[1]["batching"]["largest_batch"] >= 4


def test_disconnecting_mid_stream_frees_the_slot(server, models):
    body = {"model": models[1].name, "prompt": "Bob", "max_tokens": 1900, "n": 8, "temperature": 1.0,
            "seed": 3, "stream": True}
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=30)
    conn.request("POST", "/v1/completions", body=json.dumps(body),
                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
    reply = conn.getresponse()
    assert reply.status == 200 and reply.readline().startswith(b"data:")
    conn.sock.close()
    conn.close()
    deadline = time.monotonic() + 20
    while raw(server, "GET", "/health")[1]["active_requests"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert raw(server, "GET", "/health")[1]["active_requests"] == 0


def _prompt_ids(model_dir, messages: list[dict], **template_args) -> list[int]:
    """The prompt ids a plain transformers user gets for ``messages`` (the reference)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                         **template_args)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_migration_endpoint_round_trips_history(server, models):
    base, adapter = models
    # "model" picks the base: without it the last adapter (which never learned the pairs) answers.
    status, first = raw(server, "POST", "/", {"prompt": PAIRS[7][0], "temperature": 0,
                                              "model": base.name})
    assert status == 200 and first["status"] == 200 and first["time"]
    assert first["response"] == PAIRS[7][1]  # the trained answer
    assert first["history"] == [[PAIRS[7][0], PAIRS[7][1]]]
    # The history reaches the prompt: with max_length equal to the prompt's own length there is
    # no room to answer, and the error counts the tokens of history + prompt as transformers does.
    turns = [{"role": "user", "content": PAIRS[7][0]}, {"role": "assistant", "content": PAIRS[7][1]}]
    length = len(_prompt_ids(base, [*turns, {"role": "user", "content": PAIRS[8][0]}]))
    status, error = raw(server, "POST", "/", {"prompt": PAIRS[8][0], "history": first["history"],
                                              "max_length": length, "model": base.name})
    assert status == 400 and f"the prompt has {length} tokens" in error["error"]["message"]
    status, again = raw(server, "POST", "/", {"prompt": PAIRS[8][0], "history": first["history"],
                                              "max_length": length + 24, "temperature": 0,
                                              "model": base.name})
    assert status == 200 and again["history"] == [*first["history"], [PAIRS[8][0], again["response"]]]
    # Chat-message history is the same conversation, and comes back in its own style.
    status, as_dicts = raw(server, "POST", "/", {"prompt": PAIRS[8][0], "history": turns,
                                                 "temperature": 0, "model": base.name})
    assert status == 200 and as_dicts["response"] == again["response"]
    assert as_dicts["history"] == [*turns, {"role": "user", "content": PAIRS[8][0]},
                                   {"role": "assistant", "content": again["response"]}]
    status, error = raw(server, "POST", "/", {"prompt": "hi", "history": [{"role": "user", "content": "a"}]})
    assert status == 400 and error["error"]["param"] == "history"


def _reference_greedy(model_dir, messages: list[dict], tools: list[dict], new_tokens: int):
    """Greedy continuation by plain transformers: (text before any end-of-turn token, finish)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ids = _prompt_ids(model_dir, messages, tools=tools)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=new_tokens, do_sample=False)
    new = out[0, len(ids):].tolist()
    stops = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")}
    cut = next((i for i, t in enumerate(new) if t in stops), None)
    kept = new if cut is None else new[:cut]
    return len(ids), tokenizer.decode(kept), ("length" if cut is None else "stop")


TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather now",
                                           "parameters": {"type": "object", "properties": {}}}}]


def test_tools_reach_the_template(client, models):
    plain = client.chat.completions.create(model=models[0].name, messages=ask("Hi"), max_tokens=1)
    with_tools = client.chat.completions.create(model=models[0].name, messages=ask("Hi"), max_tokens=1,
                                                tools=TOOLS)
    assert with_tools.usage.prompt_tokens > plain.usage.prompt_tokens + 10
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    history = ask("Weather?") + [{"role": "assistant", "content": None, "tool_calls": [call]},
                                 {"role": "tool", "tool_call_id": "call_1", "content": "Sunny."}]
    reply = client.chat.completions.create(model=models[0].name, messages=history, tools=TOOLS,
                                           max_tokens=2, temperature=0)
    # The reference renders the same conversation (arguments as an object, as templates expect).
    parsed = [*history[:1], {**history[1], "content": "", "tool_calls": [
        {**call, "function": {"name": "get_weather", "arguments": {}}}]}, history[2]]
    prompt_len, text, finish = _reference_greedy(models[0], parsed, TOOLS, 2)
    assert reply.usage.prompt_tokens == prompt_len
    assert (reply.choices[0].message.content, reply.choices[0].finish_reason) == (text, finish)


def test_tool_choice_none_leaves_the_tools_out(client, models):
    plain = client.chat.completions.create(model=models[0].name, messages=ask("Hi"), max_tokens=1)
    none = client.chat.completions.create(model=models[0].name, messages=ask("Hi"), max_tokens=1,
                                          tools=TOOLS, tool_choice="none")
    auto = client.chat.completions.create(model=models[0].name, messages=ask("Hi"), max_tokens=1,
                                          tools=TOOLS, tool_choice="auto")
    assert none.usage.prompt_tokens == plain.usage.prompt_tokens == len(_prompt_ids(models[0], ask("Hi")))
    assert auto.usage.prompt_tokens == len(_prompt_ids(models[0], ask("Hi"), tools=TOOLS))


def test_echo_puts_the_prompt_before_the_answer(client, models):
    args = {"model": models[0].name, "prompt": "Alice likes", "max_tokens": 4, "temperature": 0}
    bare = client.completions.create(**args)
    echoed = client.completions.create(**args, echo=True)
    assert bare.choices[0].text and echoed.choices[0].text == "Alice likes" + bare.choices[0].text
    streamed = client.completions.create(**args, echo=True, stream=True)
    assert "".join(c.choices[0].text for c in streamed) == echoed.choices[0].text


def test_cors_answers_the_listed_origin_only(server):
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    status, _, headers = raw(server, "OPTIONS", "/v1/chat/completions", key=None, headers=preflight,
                             reply_headers=True)
    assert status == 200 and headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in headers["access-control-allow-headers"].lower()
    status, _, headers = raw(server, "OPTIONS", "/v1/chat/completions", key=None, reply_headers=True,
                             headers={**preflight, "Origin": "http://evil.example"})
    assert status == 400 and "access-control-allow-origin" not in headers
    status, _, headers = raw(server, "GET", "/v1/models", headers={"Origin": ORIGIN}, reply_headers=True)
    assert status == 200 and headers["access-control-allow-origin"] == ORIGIN
    status, _, headers = raw(server, "GET", "/v1/models", headers={"Origin": "http://evil.example"},
                             reply_headers=True)
    assert status == 200 and "access-control-allow-origin" not in headers
