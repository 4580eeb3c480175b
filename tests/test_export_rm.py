"""`tunelab export` of reward models (stage rm): a merged sequence-classification folder that
scores exactly as the run, checked against plain transformers + PEFT on the run folder, with
`tunelab score`, a live `tunelab api` (POST /v1/score) and `tunelab chat`'s refusal.

The LoRA and QLoRA runs are test_train_rm's (trained once per session and shared), plus one short
full run of this module's own; the LoRA run is exported
onto a copy of the base whose config.json names no pad token, as many hub models ship, so the
export must write the tokenizer's pad token itself for a padded batch to score right.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
import torch
from test_infer_support import free_port, start_api, stop
# env and rm_run are test_train_rm's fixtures, imported so both modules share the one LoRA run
from test_train_rm import (QLORA_RUN, env, learnable_pairs, rewards, rm_run,  # noqa: F401
                           trained_rm, tunelab, whole_text)

from tunelab.errors import ConfigError
from tunelab.export import ExportError

PAD_ID = 0  # the tiny tokenizer's <|endoftext|>, its pad token


def export(**keys):
    """run_export on a recipe given as keyword keys; the log lines are kept on the result."""
    from tunelab.config import load_config
    from tunelab.export import run_export

    lines: list[str] = []
    result = run_export(load_config(None, keys), log=lines.append)
    result.log = lines
    return result


def plain_rewards(model, tokenizer) -> list[tuple[float, float]]:
    """(chosen, rejected) rewards of the training pairs, each text alone, with torch only."""
    return rewards(model.eval(), tokenizer, learnable_pairs())


def seq_cls(path, **kwargs):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32, **kwargs)


def peft_rewards(base: Path, run: Path) -> list[tuple[float, float]]:
    """The run's rewards with plain transformers + PEFT: base with a score head, the adapter."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    model = PeftModel.from_pretrained(seq_cls(base, num_labels=1), run)
    return plain_rewards(model, AutoTokenizer.from_pretrained(run))


@pytest.fixture(scope="module")
def run_rewards(rm_run, tiny_chat_path):
    return peft_rewards(tiny_chat_path, rm_run)


@pytest.fixture(scope="module")
def base_without_pad(tiny_chat_path, tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("base") / "tiny-chat-nopad"
    shutil.copytree(tiny_chat_path, base)
    config = json.loads((base / "config.json").read_text())
    del config["pad_token_id"]
    (base / "config.json").write_text(json.dumps(config))
    return base


@pytest.fixture(scope="module")
def lora_export(rm_run, base_without_pad, tmp_path_factory, env):
    out = tmp_path_factory.mktemp("rm-export") / "merged"
    done = tunelab("export", "--model", base_without_pad, "--adapter", rm_run, "--out", out,
                   env=env)
    return out, done.stdout


def close(got: list[tuple[float, float]], expected: list[tuple[float, float]], tol: float) -> bool:
    return len(got) == len(expected) and all(
        abs(a - c) <= tol and abs(b - d) <= tol for (a, b), (c, d) in zip(got, expected))


def test_lora_rm_export_is_a_classifier_that_plain_transformers_scores_like_the_run(
        lora_export, rm_run, run_rewards):
    from transformers import AutoTokenizer

    out, stdout = lora_export
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "chat_template.jinja", "export_info.json"} <= names
    assert "Modelfile" not in names and "no Modelfile: a reward model" in stdout
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"]
    assert len(config["id2label"]) == 1 and config["pad_token_id"] == PAD_ID
    assert (out / "chat_template.jinja").read_text() == (rm_run / "chat_template.jinja").read_text()
    info = json.loads((out / "export_info.json").read_text())
    assert info["reward_model"] is True and info["verification"]["kind"] == "rewards"
    assert info["verification"]["passed"] and info["verification"]["max_rel_diff"] < 1e-4
    assert "verification passed: max |reward difference|" in stdout

    model, tokenizer = seq_cls(out).eval(), AutoTokenizer.from_pretrained(out)
    assert close(plain_rewards(model, tokenizer), run_rewards, 1e-4)
    # One right-padded batch through plain transformers: the config's pad token finds each
    # text's last token (rewards of the padded rows would be wrong without it).
    texts = [whole_text(tokenizer, r["instruction"], r["chosen"]) for r in learnable_pairs()]
    tokenizer.padding_side = "right"
    batch = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    assert (batch["attention_mask"] == 0).any()
    with torch.no_grad():
        batched = model(**batch).logits[:, 0].tolist()
    assert batched == pytest.approx([chosen for chosen, _ in run_rewards], abs=1e-4)


def test_tunelab_score_on_the_export_gives_the_runs_rewards_and_chat_refuses(
        lora_export, run_rewards, tmp_path, env):
    out, _ = lora_export
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"prompt": r["instruction"], "chosen": r["chosen"],
                                        "rejected": r["rejected"]}) + "\n"
                            for r in learnable_pairs()))
    done = tunelab("score", out, "--file", rows, "--json", env=env)
    scored = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert close([(s["chosen"], s["rejected"]) for s in scored], run_rewards, 1e-4)
    chat = tunelab("chat", "--model", out, "--query", "hi", env=env, check=False)
    assert chat.returncode == 2, chat.stdout + chat.stderr
    assert "is a reward model (stage rm)" in chat.stderr and "Traceback" not in chat.stderr
    assert f"tunelab api --model {out}" in chat.stderr


def test_api_serves_the_export_on_v1_score_with_the_runs_rewards(lora_export, run_rewards):
    out, _ = lora_export
    port = free_port()
    proc = start_api(["--model", str(out), "--max-choices", "80"], port)
    try:
        inputs = [{"prompt": r["instruction"], "response": r[side]} for r in learnable_pairs()
                  for side in ("chosen", "rejected")]
        reply = httpx.post(f"http://127.0.0.1:{port}/v1/score", json={"input": inputs}, timeout=120)
    finally:
        stop(proc)
    assert reply.status_code == 200, reply.text
    assert reply.json()["scores"] == pytest.approx(
        [value for pair in run_rewards for value in pair], abs=1e-4)


def test_qlora_rm_is_merged_onto_the_full_precision_base(tmp_path_factory, tiny_chat_path, env,
                                                         tmp_path):
    pytest.importorskip("bitsandbytes")
    from transformers import AutoTokenizer

    run = trained_rm(tmp_path_factory, QLORA_RUN[0], tiny_chat_path, env, *QLORA_RUN[1:])
    out = tmp_path / "merged"
    result = export(adapter_name_or_path=str(run), export_dir=str(out))
    assert any("4-bit base (QLoRA)" in line for line in result.log)
    assert result.verification["passed"] and result.verification["kind"] == "rewards"
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["architectures"] == ["LlamaForSequenceClassification"]
    exported = plain_rewards(seq_cls(out), AutoTokenizer.from_pretrained(out))
    assert close(exported, peft_rewards(tiny_chat_path, run), 1e-4)


def test_full_rm_run_exports_its_own_weights_with_the_same_rewards(tmp_path_factory,
                                                                  tiny_chat_path, env, tmp_path):
    from transformers import AutoTokenizer

    run = trained_rm(tmp_path_factory, "rm-full", tiny_chat_path, env, "finetuning_type=full",
                     "max_steps=2", "max_samples=16", "save_steps=100", "learning_rate=1e-3")
    out = tmp_path / "merged"
    result = export(model_name_or_path=str(run), export_dir=str(out))
    assert result.verification["passed"] and result.verification["kind"] == "rewards"
    assert any("no adapters: exporting the model's own weights" in line for line in result.log)
    tokenizer = AutoTokenizer.from_pretrained(run)
    trained, fresh = plain_rewards(seq_cls(run), tokenizer), plain_rewards(
        seq_cls(tiny_chat_path, num_labels=1), tokenizer)
    assert close(plain_rewards(seq_cls(out), AutoTokenizer.from_pretrained(out)), trained, 1e-4)
    assert not close(trained, fresh, 1e-2)  # the run changed the rewards: the match means something


def test_chat_model_options_are_refused_for_a_reward_model_by_key(rm_run, tmp_path):
    out = tmp_path / "out"
    for keys, refused in (({"export_gguf": "f16"}, ["export_gguf"]),
                          ({"export_modelfile": True}, ["export_modelfile"]),
                          ({"export_gguf": "q8_0", "export_modelfile": True},
                           ["export_gguf", "export_modelfile"])):
        with pytest.raises(ConfigError) as err:
            export(adapter_name_or_path=str(rm_run), export_dir=str(out), **keys)
        assert [p.key for p in err.value.problems] == refused
        assert all("reward model" in p.problem and "tunelab score" in p.hint
                   for p in err.value.problems)
    assert not out.exists()


def test_a_reward_export_that_lost_its_adapter_fails_verification(rm_run, tmp_path, monkeypatch):
    from peft import PeftModel

    def merge_that_drops_the_lora(model, adapters, before_last_merge):
        # The reference is base + LoRA + trained head; the saved model keeps only the head.
        with_adapter = PeftModel.from_pretrained(model, adapters[-1]).eval()
        before_last_merge(with_adapter)
        for module in with_adapter.modules():
            if hasattr(module, "lora_B"):
                for layer in module.lora_B.values():
                    torch.nn.init.zeros_(layer.weight)
        return with_adapter.merge_and_unload()

    monkeypatch.setattr("tunelab.export.merge.merge_adapters", merge_that_drops_the_lora)
    with pytest.raises(ExportError) as err:
        export(adapter_name_or_path=str(rm_run), export_dir=str(tmp_path / "out"))
    assert "verification FAILED: max |reward difference|" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_nan_rewards_fail_the_check_and_say_nan():
    from tunelab.export.verify import compare_rewards

    report = compare_rewards([1.0, -2.0, 0.5], [1.0, float("nan"), 0.5], tolerance=1e-4)
    assert not report.passed and "NaN rewards" in report.describe()
    # |0.6 - -2| = 2.6 is 1.3 of the largest reward (2); of the pairs, only (-2 vs 0.5) flips.
    moved = compare_rewards([1.0, -2.0, 0.5], [1.0, 0.6, 0.5], tolerance=1e-4)
    assert moved.max_rel_diff == pytest.approx(1.3) and moved.rank_agreement == pytest.approx(2 / 3)
    assert not moved.passed and "rank in the same order at 66.7% of pairs" in moved.describe()
