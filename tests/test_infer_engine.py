"""ChatEngine in-process: batching equals one-at-a-time, sampling, stops, reasoning, tools, errors."""

from __future__ import annotations

import threading

import pytest
from test_infer_support import PAIRS, built_once, random_lora_adapter, train_distinct_answers

from tunelab.config import load_config
from tunelab.errors import ConfigError, ModelError
from tunelab.infer import ChatRequest, RequestError, create_engine
from tunelab.infer.prompt import OutputParser, parse_tool_calls


@pytest.fixture(scope="module")
def distinct_path(tmp_path_factory, tiny_chat_path):
    return built_once(tmp_path_factory, "distinct", lambda out: train_distinct_answers(tiny_chat_path, out))


@pytest.fixture(scope="module")
def engine(distinct_path):
    cfg = load_config(None, [f"model_name_or_path={distinct_path}", "do_sample=false",
                             "max_new_tokens=24", "batch_wait_ms=50"])
    chat_engine = create_engine(cfg)
    yield chat_engine
    chat_engine.close()


def ask(question: str) -> list[dict]:
    return [{"role": "user", "content": question}]


def test_concurrent_greedy_equals_one_at_a_time(engine):
    singles = [engine.chat(ask(q)) for q, _ in PAIRS]
    assert singles == [a for _, a in PAIRS]
    batched: list[str | None] = [None] * len(PAIRS)

    def run(i: int) -> None:
        batched[i] = engine.generate(ChatRequest(messages=ask(PAIRS[i][0]))).text

    before = engine.batch_stats
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(PAIRS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = engine.batch_stats
    assert after["largest_batch"] >= 4 and after["batches"] - before["batches"] < len(PAIRS)
    assert batched == singles  # left padding with the right mask and positions changes nothing


def test_seeded_sampling_is_reproducible_and_n_gives_distinct_rows(engine):
    params = engine.defaults.updated(do_sample=True, temperature=1.5, top_k=0, top_p=1.0,
                                     seed=7, max_new_tokens=12)
    request = ChatRequest(prompt="Alice", params=params, n=3)
    first = [c.content for c in engine.generate(request).choices]
    again = [c.content for c in engine.generate(request).choices]
    assert first == again
    assert len(set(first)) > 1  # each row has its own generator (seed + index)


def test_stop_string_cuts_the_answer(engine):
    response = engine.generate(ChatRequest(messages=ask(PAIRS[0][0]),
                                           params=engine.defaults.updated(stop=["likes"])))
    assert response.text == "Alice "
    assert response.choices[0].finish_reason == "stop"


def test_length_limit_and_streaming_pieces(engine, distinct_path):
    from transformers import AutoTokenizer

    request = ChatRequest(messages=ask(PAIRS[1][0]), params=engine.defaults.updated(max_new_tokens=2))
    pieces = list(engine.stream(request))
    assert pieces[-1].finish_reason == "length" and pieces[-1].completion_tokens == 2
    # The reference: the first two tokens of the trained answer, as training tokenised it.
    tokenizer = AutoTokenizer.from_pretrained(distinct_path)
    turn = ask(PAIRS[1][0]) + [{"role": "assistant", "content": PAIRS[1][1]}]
    prompt = tokenizer.apply_chat_template(ask(PAIRS[1][0]), tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(turn, tokenize=False)
    prompt_len = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    answer_ids = tokenizer(full, add_special_tokens=False)["input_ids"][prompt_len:]
    expected = tokenizer.decode(answer_ids[:2])
    assert expected and "".join(p.content for p in pieces) == expected
    assert len([p for p in pieces if p.content]) >= 1


def test_prompt_longer_than_the_context_is_a_request_error(engine):
    with pytest.raises(RequestError) as info:
        engine.generate(ChatRequest(messages=ask("colour " * 3000)))
    assert info.value.code == "context_length_exceeded" and "2048" in str(info.value)
    assert engine.chat(ask(PAIRS[2][0])) == PAIRS[2][1]  # and the engine still works


def test_unknown_model_and_bad_params(engine):
    with pytest.raises(RequestError) as info:
        engine.generate(ChatRequest(messages=ask("hi"), model="nope"))
    assert info.value.status == 404 and "served:" in str(info.value)
    with pytest.raises(ConfigError, match="top_p"):
        engine.defaults.updated(top_p=0.0)


def test_closing_a_stream_cancels_its_row(engine):
    params = engine.defaults.updated(max_new_tokens=1500, do_sample=True, temperature=1.0, seed=1)
    job = engine.start(ChatRequest(prompt="Bob likes", params=params))
    iterator = iter(job)
    next(iterator)
    iterator.close()
    assert engine.active_requests == 0
    assert engine.chat(ask(PAIRS[3][0])) == PAIRS[3][1]


def test_adapters_are_served_by_name_without_merging(tmp_path_factory, distinct_path, engine):
    adapter = built_once(tmp_path_factory, "adapter", lambda out: random_lora_adapter(distinct_path, out))
    cfg = load_config(None, [f"adapter_name_or_path={adapter}", "do_sample=false", "max_new_tokens=12"])
    both = create_engine(cfg)  # the base is read from adapter_config.json
    try:
        assert both.model_names == [distinct_path.name, adapter.name]
        base = both.generate(ChatRequest(messages=ask(PAIRS[0][0]), model=distinct_path.name)).text
        tuned = both.generate(ChatRequest(messages=ask(PAIRS[0][0]), model=adapter.name)).text
        assert base == PAIRS[0][1] and tuned != base
    finally:
        both.close()


def test_reasoning_is_separated_from_the_answer_while_streaming():
    parser = OutputParser(think=True)
    text = "<think>\nLet me see.\n</think>\n\nParis."
    pieces = [p for ch in text for p in parser.feed(ch)] + parser.finish()[0]
    reasoning = "".join(t for kind, t in pieces if kind == "reasoning")
    content = "".join(t for kind, t in pieces if kind == "content")
    assert reasoning.strip() == "Let me see." and content == "Paris."
    plain = OutputParser(think=True)
    assert plain.feed("<th") == [] and plain.feed("is is plain") == [("content", "<this is plain")]


def test_tool_calls_are_parsed_and_bad_json_is_kept_as_text():
    parser = OutputParser(tools=True)
    pieces = parser.feed('Checking.<tool_call>{"name": "weather", "arguments": {"city": "Paris"}}</tool_call>')
    rest, calls = parser.finish()
    assert pieces == [("content", "Checking.")] and rest == []
    assert calls[0]["function"] == {"name": "weather", "arguments": '{"city": "Paris"}'}
    calls, text = parse_tool_calls("<tool_call>not json</tool_call>")
    assert calls == [] and "not json" in text


def test_thinking_switch_reaches_the_template(tiny_think_path):
    cfg = load_config(None, [f"model_name_or_path={tiny_think_path}", "enable_thinking=false"])
    think_engine = create_engine(cfg)
    try:
        prepared = think_engine._prepare(ChatRequest(messages=ask("hi")))
        prompt = prepared.served.tokenizer.decode(prepared.prompt_ids)
        assert prompt.endswith("<think>\n\n</think>\n\n")
        on = think_engine._prepare(ChatRequest(messages=ask("hi"), enable_thinking=True))
        assert len(on.prompt_ids) < len(prepared.prompt_ids)
    finally:
        think_engine.close()


def test_vllm_backend_without_vllm_says_what_to_do(tiny_chat_path):
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
        pytest.skip("vllm is installed here")
    except ImportError:
        pass
    cfg = load_config(None, [f"model_name_or_path={tiny_chat_path}", "infer_backend=vllm"])
    with pytest.raises(ConfigError, match="vllm") as info:
        create_engine(cfg)
    assert "infer_backend: huggingface" in info.value.hint


def test_a_model_larger_than_free_memory_is_refused_before_loading(tmp_path):
    from tunelab.infer.loading import check_memory

    (tmp_path / "config.json").write_text('{"dtype": "bfloat16"}')
    with open(tmp_path / "model.safetensors", "wb") as weights:
        weights.truncate(1 << 40)  # sparse: a terabyte that takes no disk
    with pytest.raises(ModelError, match="GiB"):
        check_memory(str(tmp_path), "torch.bfloat16", "cpu", quantized=False)


def test_adapter_run_dir_tokenizer_is_used(tmp_path, tiny_chat_path):
    from transformers import AutoTokenizer

    from tunelab.infer.loading import adapter_tokenizer_dir

    run = tmp_path / "run"
    checkpoint = run / "checkpoint-5"
    checkpoint.mkdir(parents=True)
    AutoTokenizer.from_pretrained(tiny_chat_path).save_pretrained(run)
    assert adapter_tokenizer_dir(str(checkpoint)) == run
    assert adapter_tokenizer_dir(str(tmp_path)) is None


def _rows(params_list):
    from tunelab.infer.rows import Row

    return [Row(prompt_ids=[], params=params, emit=lambda event: None, decode=lambda ids: "",
                stop_ids=frozenset()) for params in params_list]


@pytest.mark.parametrize("temperature, top_k, top_p", [(1.0, 0, 0.9), (0.7, 50, 1.0), (1.3, 20, 0.5),
                                                       (0.5, 5, 0.95), (2.0, 0, 0.3)])
def test_sampling_filters_match_transformers_logits_processors(temperature, top_k, top_p):
    import torch
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    from tunelab.infer.params import SamplingParams
    from tunelab.infer.rows import filtered_logits

    params = SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p)
    generator = torch.Generator().manual_seed(11)
    for _ in range(5):
        logits = torch.randn(1, 1000, generator=generator) * 3
        theirs = TemperatureLogitsWarper(temperature)(None, logits.clone())
        if top_k:
            theirs = TopKLogitsWarper(top_k)(None, theirs)
        if top_p < 1.0:
            theirs = TopPLogitsWarper(top_p)(None, theirs)
        ours = filtered_logits(logits[0], params)
        assert torch.equal(torch.isfinite(ours), torch.isfinite(theirs[0]))  # the same tokens kept
        assert torch.allclose(torch.softmax(ours, -1).float(), torch.softmax(theirs[0], -1), atol=1e-6)


def test_repetition_penalty_matches_transformers_per_row():
    import torch
    from transformers import RepetitionPenaltyLogitsProcessor

    from tunelab.infer.params import SamplingParams
    from tunelab.infer.rows import apply_repetition_penalty

    generator = torch.Generator().manual_seed(5)
    scores = torch.randn(3, 200, generator=generator) * 4
    input_ids = torch.randint(0, 200, (3, 30), generator=generator)
    penalties = [1.3, 1.0, 0.7]
    ours = apply_repetition_penalty(input_ids, scores.clone(),
                                    _rows([SamplingParams(repetition_penalty=p) for p in penalties]))
    for i, penalty in enumerate(penalties):
        theirs = RepetitionPenaltyLogitsProcessor(penalty)(input_ids[i:i + 1], scores[i:i + 1].clone())
        assert torch.allclose(ours[i], theirs[0])
    assert not torch.equal(ours[0], scores[0])  # the penalty did something


def test_limits_default_to_the_context_and_refuse_nonsense():
    from tunelab.config.infer import InferArgs
    from tunelab.infer.limits import Limits

    auto = Limits.resolve(InferArgs(), context=131072)
    assert (auto.prompt_tokens, auto.answer_tokens, auto.choices) == (131072, 131072, 16)
    assert auto.request_bytes == 16 * 131072  # 2 MiB: above the 1 MiB floor
    assert Limits.resolve(InferArgs(), context=2048).request_bytes == 1 << 20
    assert Limits.resolve(InferArgs(max_answer_tokens=64), context=2048).answer_tokens == 64
    with pytest.raises(ConfigError, match="max_prompt_tokens"):
        Limits.resolve(InferArgs(max_prompt_tokens=-1), context=2048)
    with pytest.raises(ConfigError, match="max_choices"):
        Limits.resolve(InferArgs(max_choices=0), context=2048)
