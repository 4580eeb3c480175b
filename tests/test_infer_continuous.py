"""Continuous batching (batching: continuous): a request that arrives while another is decoding
joins at the next step, and every answer equals what the model gives that request alone.

Progress is counted in tokens, not seconds: each ``("text", ...)`` event a row streams is one
token (rows.py), so the long answer's events that were already queued when the short answer's
first piece arrived bound how far the long one had got.
"""

from __future__ import annotations

import threading

import pytest
from test_infer_support import PAIRS, built_once, random_lora_adapter, train_distinct_answers

from tunelab.config import load_config
from tunelab.infer import ChatRequest, create_engine

LONG = 160  # tokens of the long answer (greedy decoding of the random adapter never stops)


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_chat_path):
    base = built_once(tmp_path_factory, "distinct", lambda out: train_distinct_answers(tiny_chat_path, out))
    adapter = built_once(tmp_path_factory, "adapter", lambda out: random_lora_adapter(base, out))
    return base, adapter


@pytest.fixture(scope="module")
def alone(models):
    """The reference: plain transformers + PEFT greedy ``generate`` of the long prompt, alone."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base, adapter = models
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter).eval()
    ids = tokenizer("Bob", return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=LONG, do_sample=False)
    new = out[0, ids["input_ids"].shape[1]:].tolist()
    assert tokenizer.eos_token_id not in new  # the long answer really runs to its length
    return tokenizer.decode(new, skip_special_tokens=False)


def engine_for(models, *keys: str):
    base, adapter = models
    cfg = load_config(None, [f"model_name_or_path={base}", f"adapter_name_or_path={adapter}",
                             "do_sample=false", "max_new_tokens=24", "batch_wait_ms=0", *keys])
    return create_engine(cfg)


def long_job(engine, models):
    params = engine.defaults.updated(max_new_tokens=LONG)
    return engine.start(ChatRequest(prompt="Bob", model=models[1].name, params=params))


def raw_events(job, count: int | None = None) -> list[tuple]:
    """The job's next ``count`` raw row events (all of them, up to "done", when None)."""
    events = []
    while count is None or len(events) < count:
        _, event = job.events.get(timeout=60)
        events.append(event)
        if event[0] != "text":
            break
    return events


def text_of(events: list[tuple]) -> str:
    return "".join(e[1] for e in events if e[0] == "text")


@pytest.mark.parametrize("keys", [(), ("max_batch_size=1", "batch_slice_tokens=4")],
                         ids=["joins-the-batch", "full-batch-preempts"])
def test_a_request_arriving_mid_generation_starts_before_it_ends(models, alone, keys):
    engine = engine_for(models, *keys, *(() if keys else ("batch_slice_tokens=0",)))
    try:
        long = long_job(engine, models)
        before = raw_events(long, 3)  # the long answer is decoding
        short = engine.stream(ChatRequest(messages=[{"role": "user", "content": PAIRS[0][0]}],
                                          model=models[0].name))
        first = next(short)
        # Every long event emitted before the short answer's first piece is queued by now.
        during = raw_events(long, long.events.qsize())
        assert all(e[0] == "text" for e in before + during), "the long answer ended first"
        assert len(before + during) < LONG / 2  # the short one started within the first half
        short_text = first.content + "".join(d.content for d in short)
        after = raw_events(long)
    finally:
        engine.close()
    assert after[-1] == ("done", "length", LONG)
    assert short_text == PAIRS[0][1]  # the trained answer, as one-at-a-time decoding gives it
    assert text_of(before + during + after) == alone


def test_rows_joining_and_leaving_at_every_step_decode_as_if_alone(models, alone):
    """Eight questions join one by one, two tokens apart, while the long answer runs: each
    request joins, finishes and leaves at its own step; every answer is its one-at-a-time one."""
    engine = engine_for(models, "batch_slice_tokens=0")
    answers: dict[int, str] = {}

    def ask(i: int) -> None:
        request = ChatRequest(messages=[{"role": "user", "content": PAIRS[i][0]}], model=models[0].name)
        answers[i] = engine.generate(request).text

    try:
        long = long_job(engine, models)
        events, threads = [], []
        for i in range(8):
            events += raw_events(long, 2)
            threads.append(threading.Thread(target=ask, args=(i,)))
            threads[-1].start()
        for thread in threads:
            thread.join(timeout=120)
        events += raw_events(long)
        stats = engine.batch_stats
    finally:
        engine.close()
    assert answers == {i: PAIRS[i][1] for i in range(8)}
    assert text_of(events) == alone and events[-1] == ("done", "length", LONG)
    assert stats["yields"] >= 4 and stats["largest_batch"] >= 2  # they did join a running batch
