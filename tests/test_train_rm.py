"""stage: rm as a user runs it: `tunelab train` on pairs the tiny model can learn, then the saved
run checked with plain transformers + PEFT, scored by `tunelab score` and by a live
`tunelab api` (POST /v1/score), refused by `tunelab chat`, previewed by `tunelab data preview`.

The pairs: two random sentences over one word list; the chosen one holds "thanks", the rejected
one "whatever". Before training, the reward model (the base with a fresh score head) ranks them
about as a coin would (0.47 with these 32 pairs); after 16 LoRA steps it must rank at least 90%
of them right.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import torch
from test_infer_support import built_once, free_port, start_api, stop

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("river stone cloud green small light window apple morning paper table garden yellow "
         "music quiet road winter bread happy silver ocean forest candle little summer tower").split()
TRAIN = ["stage=rm", "dataset=pairs", "finetuning_type=lora", "lora_target=all", "lora_rank=8",
         "learning_rate=5e-3", "per_device_train_batch_size=8", "cutoff_len=128", "logging_steps=4",
         "plot_loss=false", "seed=42"]


def learnable_pairs(n: int = 32, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)

    def sentence(length: int, marker: str) -> str:
        words = [rng.choice(WORDS) for _ in range(length)]
        words.insert(rng.randint(0, length), marker)
        return " ".join(words) + "."

    rows = []
    for _ in range(n):
        length = rng.randint(8, 12)
        rows.append({"instruction": f"Say something about {rng.choice(WORDS)} {rng.choice(WORDS)}.",
                     "chosen": sentence(length, "thanks"), "rejected": sentence(length, "whatever")})
    return rows


def tunelab(*args, env, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "tunelab", *map(str, args)], capture_output=True,
                          text=True, timeout=600, env={**env, "NO_COLOR": "1"}, cwd=ROOT)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def write_pairs(data: Path) -> None:
    """The learnable pairs as a registered ``ranking`` dataset named "pairs" in ``data``."""
    (data / "pairs.json").write_text(json.dumps(learnable_pairs()), encoding="utf-8")
    columns = {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"}
    (data / "dataset_info.json").write_text(json.dumps(
        {"pairs": {"file_name": "pairs.json", "ranking": True, "columns": columns}}))


def rm_env(tunelab_home: Path) -> dict[str, str]:
    return {**os.environ, "TUNELAB_HOME": str(tunelab_home), "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false"}


def trained_rm(tmp_path_factory, name: str, model: Path, env: dict, *keys: str) -> Path:
    """An rm run on the learnable pairs, trained once per test session for every module that
    asks (test_export_rm exports these runs); its stdout is kept in train.log beside it."""
    data = built_once(tmp_path_factory, "rm-pairs", write_pairs)

    def train(folder: Path) -> None:
        done = tunelab("train", f"model_name_or_path={model}", f"dataset_dir={data}",
                       f"output_dir={folder / 'run'}", *TRAIN, *keys, env=env)
        (folder / "train.log").write_text(done.stdout)

    return built_once(tmp_path_factory, name, train) / "run"


# The 16-step LoRA run, and a 2-step QLoRA one.
LORA_RUN = ("rm-lora", "num_train_epochs=4", "save_steps=8")
QLORA_RUN = ("rm-qlora", "quantization_bit=4", "max_steps=2", "max_samples=16", "logging_steps=1",
             "save_steps=100")


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory) -> Path:
    return built_once(tmp_path_factory, "rm-pairs", write_pairs)


@pytest.fixture(scope="module")
def env(tunelab_home) -> dict[str, str]:
    return rm_env(tunelab_home)


@pytest.fixture(scope="module")
def rm_run(tmp_path_factory, tiny_chat_path, env) -> Path:
    return trained_rm(tmp_path_factory, LORA_RUN[0], tiny_chat_path, env, *LORA_RUN[1:])


def whole_text(tokenizer, prompt: str, answer: str) -> str:
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    return tokenizer.apply_chat_template(messages, tokenize=False)


def rewards(model, tokenizer, rows: list[dict]) -> list[tuple[float, float]]:
    """(chosen, rejected) rewards, one unpadded text at a time, from the template's own render."""
    out = []
    with torch.no_grad():
        for row in rows:
            pair = []
            for side in ("chosen", "rejected"):
                text = whole_text(tokenizer, row["instruction"], row[side])
                ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
                pair.append(model(input_ids=ids).logits[0, 0].item())
            out.append(tuple(pair))
    return out


def accuracy(pairs: list[tuple[float, float]]) -> float:
    return sum(chosen > rejected for chosen, rejected in pairs) / len(pairs)


@pytest.fixture(scope="module")
def plain_torch(rm_run, tiny_chat_path):
    """Rewards of the training pairs before training (the base with a fresh score head, seeded
    as the run was) and after (the base plus the saved adapter), with transformers + PEFT only."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

    rows = learnable_pairs()
    tokenizer = AutoTokenizer.from_pretrained(rm_run)
    set_seed(42)
    fresh = AutoModelForSequenceClassification.from_pretrained(tiny_chat_path, num_labels=1).eval()
    before = rewards(fresh, tokenizer, rows)
    base = AutoModelForSequenceClassification.from_pretrained(tiny_chat_path, num_labels=1)
    trained = PeftModel.from_pretrained(base, rm_run).eval()
    return {"before": before, "after": rewards(trained, tokenizer, rows)}


def test_pairwise_accuracy_rises_from_chance(plain_torch, rm_run):
    before, after = accuracy(plain_torch["before"]), accuracy(plain_torch["after"])
    print(f"pairwise accuracy on the training pairs: before {before:.3f}, after {after:.3f}")
    assert 0.3 <= before <= 0.7
    assert after >= 0.9
    # The run is a reward model with its head saved beside the adapter.
    from safetensors.torch import load_file

    assert json.loads((rm_run / "manifest.json").read_text())["stage"] == "rm"
    assert json.loads((rm_run / "adapter_config.json").read_text())["task_type"] == "SEQ_CLS"
    assert "base_model.model.score.weight" in load_file(rm_run / "adapter_model.safetensors")


def test_events_log_accuracy_and_margin(rm_run):
    events = [json.loads(line) for line in (rm_run / "events.jsonl").read_text().splitlines()]
    logs = [e for e in events if e["type"] == "log"]
    assert [e["step"] for e in logs] == [4, 8, 12, 16]
    first, last = logs[0]["metrics"], logs[-1]["metrics"]
    assert last["accuracy"] >= 0.9 and last["margin"] > first["margin"] + 1.0
    assert logs[-1]["loss"] < logs[0]["loss"]
    assert {"type": "checkpoint", "step": 8} in [{k: e[k] for k in ("type", "step")} for e in events]


def score_rows() -> list[dict]:
    return [{"prompt": r["instruction"], "chosen": r["chosen"], "rejected": r["rejected"]}
            for r in learnable_pairs()]


@pytest.fixture(scope="module")
def cli_scores(rm_run, tmp_path_factory, env):
    rows_file = tmp_path_factory.mktemp("score") / "rows.jsonl"
    rows_file.write_text("".join(json.dumps(r) + "\n" for r in score_rows()))
    text = whole_text_of_first_chosen(rm_run)
    done = tunelab("score", rm_run, "--file", rows_file, "--text", text, "--json", env=env)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return lines[0], lines[1:]


def whole_text_of_first_chosen(rm_run) -> str:
    from transformers import AutoTokenizer

    row = learnable_pairs()[0]
    return whole_text(AutoTokenizer.from_pretrained(rm_run), row["instruction"], row["chosen"])


def test_score_cli_matches_plain_torch_and_prefers_chosen(cli_scores, plain_torch):
    text, pairs = cli_scores
    expected = plain_torch["after"]
    assert len(pairs) == len(expected)
    for got, (chosen, rejected) in zip(pairs, expected):
        assert got["chosen"] == pytest.approx(chosen, abs=1e-4)
        assert got["rejected"] == pytest.approx(rejected, abs=1e-4)
        assert got["chosen_wins"] == (chosen > rejected)
    assert sum(p["chosen_wins"] for p in pairs) >= 0.9 * len(pairs)
    # A whole text rendered by the template scores as its prompt/response pair does.
    assert text["score"] == pytest.approx(expected[0][0], abs=1e-4)


@pytest.fixture(scope="module")
def score_server(rm_run):
    port = free_port()
    proc = start_api(["--adapter", str(rm_run), "--max-choices", "80", "--max-prompt-tokens", "256",
                      "batch_wait_ms=5"], port)
    yield f"http://127.0.0.1:{port}"
    stop(proc)


def test_api_scores_equal_the_cli_and_bad_requests_are_4xx(score_server, cli_scores, rm_run):
    _, pairs = cli_scores
    inputs = [{"prompt": r["prompt"], "response": r[side]} for r in score_rows()
              for side in ("chosen", "rejected")]
    with httpx.Client(base_url=score_server, timeout=120) as client:
        reply = client.post("/v1/score", json={"model": rm_run.name, "input": inputs})
        assert reply.status_code == 200, reply.text
        body = reply.json()
        served = [item["score"] for item in body["data"]]
        assert [item["index"] for item in body["data"]] == list(range(len(inputs)))
        assert served == pytest.approx([p[side] for p in pairs for side in ("chosen", "rejected")],
                                       abs=1e-5)
        assert body["scores"] == served and body["model"] == rm_run.name
        bad = [({"input": []}, 400, "input"),
               ({"input": ["x"] * 81}, 400, "input"),
               ({"input": [{"prompt": "hi"}]}, 400, "input.0.response"),
               ({"input": [{"prompt": "hi", "response": ""}]}, 400, "input.0.response"),
               ({"input": ["word " * 400]}, 400, "input.0"),
               ({"input": ["hi"], "model": "other"}, 404, "model")]
        for request, status, param in bad:
            reply = client.post("/v1/score", json=request)
            assert (reply.status_code, reply.json()["error"]["param"]) == (status, param), reply.text
        chat = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
        assert chat.status_code == 400 and "/v1/score" in chat.json()["error"]["message"]


def test_score_route_survives_schema_fuzzing(score_server):
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings

    schema = schemathesis.openapi.from_url(f"{score_server}/openapi.json")
    operation = next(op.ok() for op in schema.get_all_operations() if op.ok().path == "/v1/score")
    statuses = []

    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def fuzz(case) -> None:
        response = case.call(base_url=score_server, timeout=60)
        assert response.status_code < 500, response.text[:500]
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}
        statuses.append(response.status_code)

    fuzz()
    assert 200 in statuses


def test_chat_refuses_a_reward_model_and_points_at_score(rm_run, env):
    done = tunelab("chat", "--adapter", rm_run, "--query", "hi", env=env, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "is a reward model (stage rm)" in done.stderr and f"tunelab score {rm_run}" in done.stderr
    assert "Traceback" not in done.stderr


def test_preview_shows_chosen_and_rejected_with_trained_tokens(pairs_dir, tiny_chat_path, capsys,
                                                              monkeypatch):
    from tunelab.cli import main

    monkeypatch.setenv("NO_COLOR", "1")
    row = learnable_pairs()[0]
    assert main(["data", "preview", "pairs", "--stage", "rm", "--rows", "1", "--dataset-dir",
                 str(pairs_dir), "--model", str(tiny_chat_path)]) == 0
    out = capsys.readouterr().out
    chosen_at, rejected_at = out.index("--- chosen: tokens:"), out.index("--- rejected: tokens:")
    assert chosen_at < rejected_at
    assert f"[[{row['chosen']}<|im_end|>\n]]" in out[chosen_at:rejected_at]
    assert f"[[{row['rejected']}<|im_end|>\n]]" in out[rejected_at:]
    prompt = f"<|im_start|>user\n{row['instruction']}<|im_end|>\n<|im_start|>assistant\n"
    assert out[chosen_at:rejected_at].count(prompt) == 1 and out[rejected_at:].count(prompt) == 1


def test_kto_and_prompt_samples_preview_their_own_shape(tiny_chat_path):
    from transformers import AutoTokenizer

    from tunelab.data.conversation import Conversation, LabeledSample, Message, PromptSample
    from tunelab.data.preview import format_preview, preview_sample

    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_path)
    options = {"cutoff_len": 64, "enable_thinking": True, "default_system": None}
    conv = Conversation([Message("user", "hi"), Message("assistant", "hello there")])
    labeled = format_preview("r", preview_sample(LabeledSample(conv, False), tokenizer,
                                                 {**options, "stage": "kto"}))
    assert "--- undesirable answer: tokens:" in labeled and "[[hello there<|im_end|>\n]]" in labeled
    prompt = preview_sample(PromptSample(Conversation([Message("user", "2+2?")]), answer="4"),
                            tokenizer, {**options, "stage": "grpo"})
    (side,) = prompt.sides
    assert side.trained == 0 and "[[" not in side.marked
    assert side.marked.endswith("<|im_start|>assistant\n") and "[reference answer] 4" in prompt.conversation


def test_qlora_reward_model_trains_on_cpu(tmp_path_factory, tiny_chat_path, env):
    pytest.importorskip("bitsandbytes")
    out = trained_rm(tmp_path_factory, QLORA_RUN[0], tiny_chat_path, env, *QLORA_RUN[1:])
    assert "run saved in" in (out.parent / "train.log").read_text()
    logs = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    logs = [e for e in logs if e["type"] == "log"]
    assert len(logs) == 2 and all(0 <= e["metrics"]["accuracy"] <= 1 for e in logs)
    assert logs[-1]["loss"] < logs[0]["loss"]
    from safetensors.torch import load_file

    head = load_file(out / "adapter_model.safetensors")["base_model.model.score.weight"]
    assert head.dtype == torch.float32


@pytest.mark.parametrize("method", ["lora", "dora", "freeze", "full", "qlora"])
def test_every_method_trains_the_score_head(method, tiny_chat_path, tmp_path):
    from tunelab.config import load_config
    from tunelab.train.stages import rm

    if method == "qlora":
        pytest.importorskip("bitsandbytes")
    extra = {"lora": ["finetuning_type=lora"], "dora": ["finetuning_type=lora", "use_dora=true"],
             "freeze": ["finetuning_type=freeze", "freeze_trainable_layers=1"],
             "full": ["finetuning_type=full"],
             "qlora": ["finetuning_type=lora", "quantization_bit=4"]}[method]
    cfg = load_config(None, [f"model_name_or_path={tiny_chat_path}", "stage=rm", "dataset=x",
                             f"output_dir={tmp_path}", *extra])
    model = rm.load_model(cfg)
    trained = {name for name, param in model.named_parameters() if param.requires_grad}
    head = [name for name in trained if ".score." in f".{name}"]
    if method in ("lora", "dora", "qlora"):  # PEFT trains a full copy of the head beside the adapter
        assert head and all("score.modules_to_save" in name for name in head), head
    else:
        assert "score.weight" in {name.split("model.")[-1] for name in head}, head
    assert not any("score" in name and "lora_" in name for name in trained)  # the head gets no LoRA
    if method == "freeze":
        assert not any(".layers.0." in name for name in trained)
    if method == "qlora":
        assert any(type(m).__name__ == "Linear4bit" for m in model.modules())


def test_reward_trainer_rows_are_the_templates_own_tokens(pairs_dir, tiny_chat_path, tmp_path,
                                                          monkeypatch):
    """What RewardTrainer is fed for each side is the chat template's render of prompt + answer,
    tokenised once: the ids chat and `tunelab score` produce for the same pair."""
    from transformers import AutoTokenizer

    from tunelab.config import load_config
    from tunelab.data.pipeline import prepare_datasets
    from tunelab.train.stages.rm import whole_texts

    monkeypatch.setenv("TUNELAB_HOME", str(tmp_path / "home"))
    cfg = load_config(None, [f"model_name_or_path={tiny_chat_path}", "stage=rm", "dataset=pairs",
                             f"dataset_dir={pairs_dir}", "cutoff_len=128", f"output_dir={tmp_path}"])
    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_path)
    rows = whole_texts(prepare_datasets(cfg, tokenizer, "rm").train)
    assert set(rows.column_names) == {"chosen_ids", "rejected_ids"}
    for row, pair in zip(rows, learnable_pairs()):
        for side in ("chosen", "rejected"):
            text = whole_text(tokenizer, pair["instruction"], pair[side])
            assert row[f"{side}_ids"] == tokenizer(text, add_special_tokens=False)["input_ids"]


def test_board_preview_shows_both_sides_of_a_pair(pairs_dir, tiny_chat_path, tmp_path):
    from tunelab.ui.train_actions import preview_dataset

    recipe = {"model_name_or_path": str(tiny_chat_path), "stage": "rm", "dataset": "pairs",
              "dataset_dir": str(pairs_dir), "output_dir": str(tmp_path / "run")}
    page = preview_dataset(recipe, 0, 2, "en")
    row = learnable_pairs()[0]
    assert page.count("<pre class='preview-row'>") == 4
    assert page.count("<b>chosen</b>") == 2 and page.count("<b>rejected</b>") == 2
    assert f"<mark class='trained'>{row['chosen']}&lt;|im_end|&gt;\n</mark>" in page
    assert f"<mark class='trained'>{row['rejected']}&lt;|im_end|&gt;\n</mark>" in page
