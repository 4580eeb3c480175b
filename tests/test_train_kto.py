"""stage: kto through real `tunelab train` runs of the tiny model on kto_en_demo: the run starts
at the reference (the hand-computed KTO loss), desirable rewards rise above undesirable ones,
the trained model moved its log-probabilities towards the desirable answers of held-out rows
(computed here with plain transformers + PEFT), QLoRA trains, and bad kto_tag rows are named."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tunelab.resources import demo_data_dir

ROOT = Path(__file__).resolve().parents[1]
TRAIN_ROWS = 64  # max_samples: the first rows train, the last HELD_OUT are never seen
HELD_OUT = 80
QUICK = [f"max_samples={TRAIN_ROWS}", "max_steps=12", "logging_steps=1", "plot_loss=false",
         "lr_scheduler_type=constant", "warmup_ratio=0"]


def tunelab(*args, env, ok=True):
    proc = subprocess.run([sys.executable, "-m", "tunelab", *map(str, args)], capture_output=True,
                          text=True, timeout=600, env=env, cwd=ROOT)
    assert (proc.returncode == 0) == ok, proc.stdout + proc.stderr
    return proc


def log_events(run):
    events = map(json.loads, (Path(run) / "events.jsonl").read_text().splitlines())
    # a stage's own numbers (TRL's rewards/chosen, kl, ...) sit under "metrics"
    return [{**e, **e.get("metrics", {})} for e in events if e["type"] == "log"]


@pytest.fixture(scope="module")
def kto_run(tmp_path_factory, tiny_chat_path, tunelab_home):
    out = tmp_path_factory.mktemp("kto") / "run"
    env = {**os.environ, "TUNELAB_HOME": str(tunelab_home), "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    proc = tunelab("train", "examples/tiny_lora_kto.yaml", f"model_name_or_path={tiny_chat_path}",
                   f"output_dir={out}", *QUICK, env=env)
    return out, proc.stdout + proc.stderr


def test_kto_starts_at_the_reference_and_desirable_rewards_rise_above_undesirable(kto_run):
    run, output = kto_run
    assert "reference model: the base model with the LoRA adapter disabled" in output
    events = log_events(run)
    assert [e["step"] for e in events] == list(range(1, 13))
    first = events[0]
    # step 1 runs before any update: policy == reference, so every reward and the KL are 0 and
    # each row's loss is 1 - sigmoid(beta * 0) = 0.5
    assert first["rewards/chosen"] == pytest.approx(0, abs=1e-6)
    assert first["rewards/rejected"] == pytest.approx(0, abs=1e-6)
    assert first["loss"] == pytest.approx(0.5, abs=1e-6)
    last = events[-4:]
    chosen = sum(e["rewards/chosen"] for e in last) / len(last)
    rejected = sum(e["rewards/rejected"] for e in last) / len(last)
    assert chosen > 0.5 and rejected < -0.5, (chosen, rejected)
    assert all(e["rewards/chosen"] > e["rewards/rejected"] + 0.5 for e in last)
    assert json.loads((run / "manifest.json").read_text())["status"] == "completed"
    # the saved run is the one trained adapter: TRL's copy of it as a reference was dropped
    assert (run / "adapter_model.safetensors").is_file() and not (run / "ref").exists()


def _answer_logprob(model, tokenizer, messages) -> float:
    """Summed log-probability of the assistant answer (end of turn included) after the prompt,
    both rendered with the run's chat template."""
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    assert ids[:len(prompt_ids)] == prompt_ids
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, :-1].float()
    logps = torch.log_softmax(logits, -1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]
    return float(logps[len(prompt_ids) - 1:].sum())


def test_trained_model_moves_towards_desirable_answers_of_held_out_rows(kto_run, tiny_chat_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run, _ = kto_run
    rows = json.loads((demo_data_dir() / "kto_en_demo.json").read_text())[-HELD_OUT:]
    tokenizer = AutoTokenizer.from_pretrained(run)
    reference = AutoModelForCausalLM.from_pretrained(tiny_chat_path).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_chat_path)
    trained = PeftModel.from_pretrained(base, run).eval()
    shift = {True: [], False: []}
    for row in rows:
        delta = (_answer_logprob(trained, tokenizer, row["messages"])
                 - _answer_logprob(reference, tokenizer, row["messages"]))
        shift[row["label"]].append(delta)
    desirable = sum(shift[True]) / len(shift[True])
    undesirable = sum(shift[False]) / len(shift[False])
    assert len(shift[True]) > 20 and len(shift[False]) > 20
    # the policy gained log-probability on desirable answers and lost it on undesirable ones
    assert desirable > 1.0 and undesirable < -1.0, (desirable, undesirable)
    assert sum(d > u for d in shift[True] for u in shift[False]) / (
        len(shift[True]) * len(shift[False])) > 0.9


def test_qlora_4bit_kto_trains_on_cpu(tmp_path, tiny_chat_path, tunelab_env):
    pytest.importorskip("bitsandbytes")
    out = tmp_path / "run"
    tunelab("train", "examples/tiny_lora_kto.yaml", f"model_name_or_path={tiny_chat_path}",
            f"output_dir={out}", "quantization_bit=4", "additional_target=null", "max_samples=16",
            "max_steps=2", "logging_steps=1", "plot_loss=false", "pref_beta=0.5",
            "kto_chosen_weight=2.0", env=tunelab_env)
    events = log_events(out)
    assert [e["step"] for e in events] == [1, 2]
    assert all(isinstance(e["rewards/chosen"], float) and isinstance(e["kl"], float) for e in events)
    # step 1: every row's loss is 1 - sigmoid(0) = 0.5, a desirable one's weighed by 2
    labels = [r["label"] for r in json.loads((demo_data_dir() / "kto_en_demo.json").read_text())[:8]]
    expected = sum(0.5 * (2.0 if label else 1.0) for label in labels) / len(labels)
    assert 0 < sum(labels) < 8 and events[0]["loss"] == pytest.approx(expected, abs=1e-6)
    assert (out / "adapter_model.safetensors").is_file()
    # the recipe's keys reached TRL's config; TRL's own defaults (bf16, checkpointing) did not
    args = torch.load(out / "training_args.bin", weights_only=False)
    assert (args.beta, args.desirable_weight, args.undesirable_weight) == (0.5, 2.0, 1.0)
    assert args.bf16 is False and args.gradient_checkpointing is False


def test_unpaired_rows_are_the_prompt_and_answer_of_one_render(tiny_chat_path):
    from transformers import AutoTokenizer

    from tunelab.data.conversation import Conversation, LabeledSample, Message
    from tunelab.data.encode_stages import STAGE_ENCODERS

    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_path)
    messages = [{"role": "user", "content": "What is 2 + 2?"},
                {"role": "assistant", "content": "Sure! 2 + 2 = 4."}]
    sample = LabeledSample(Conversation([Message(**m) for m in messages]), desirable=False)
    options = {"cutoff_len": 1024, "enable_thinking": True, "default_system": None}
    row = STAGE_ENCODERS["unpaired"](sample, tokenizer, options)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    prompt = tokenizer.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    assert row["prompt_ids"] == tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert row["prompt_ids"] + row["completion_ids"] == tokenizer(full, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(row["completion_ids"]).startswith("Sure! 2 + 2 = 4.")
    assert row["label"] is False
    # cut to cutoff_len: the answer keeps its start and at least half the budget
    short = STAGE_ENCODERS["unpaired"](sample, tokenizer, {**options, "cutoff_len": 12})
    assert len(short["prompt_ids"]) + len(short["completion_ids"]) == 12
    assert short["completion_ids"] == row["completion_ids"][:len(short["completion_ids"])]
    assert short["prompt_ids"] == row["prompt_ids"][-len(short["prompt_ids"]):]
    assert len(short["completion_ids"]) >= 6
    # `tunelab data preview --stage kto` marks the answer as the trained part
    from tunelab.data.preview import preview_sample

    view = preview_sample(sample, tokenizer, {**options, "stage": "kto"})
    assert view.marked == prompt + "[[" + full[len(prompt):] + "]]" and "[label] undesirable" in view.conversation


def _bad_dataset(folder: Path) -> None:
    messages = [{"role": "user", "content": "What is 2 + 2?"},
                {"role": "assistant", "content": "Sure! 2 + 2 = 4."}]
    folder.mkdir()
    (folder / "tags.json").write_text(json.dumps([
        {"messages": messages, "label": True}, {"messages": messages},
        {"messages": messages, "label": "maybe"}]))
    (folder / "only_bad.json").write_text(json.dumps([
        {"messages": messages, "kto": True}, {"messages": messages, "label": None}]))
    spec = {"formatting": "sharegpt", "columns": {"messages": "messages", "kto_tag": "label"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                     "assistant_tag": "assistant"}}
    (folder / "dataset_info.json").write_text(json.dumps({
        "tags": {"file_name": "tags.json", **spec}, "only_bad": {"file_name": "only_bad.json", **spec}}))


def test_bad_kto_tag_rows_are_named_with_file_row_and_reason(tmp_path, tunelab_env, tiny_chat_path):
    data = tmp_path / "data"
    _bad_dataset(data)
    out = tunelab("data", "validate", "tags", "--stage", "kto", f"dataset_dir={data}",
                  env=tunelab_env, ok=False).stdout
    assert "tags: 1/3 rows usable, 2 skipped" in out
    assert f"{data / 'tags.json'}:2: missing column 'label' (kto_tag)" in out
    assert f"{data / 'tags.json'}:3: column 'label' (kto_tag) must be true (a desirable answer) " \
           "or false (an undesirable one), got 'maybe'" in out
    # `tunelab train` names them too, and stops before a model loads or a run folder is made
    err = tunelab("train", "examples/tiny_lora_kto.yaml", f"model_name_or_path={tiny_chat_path}",
                  "dataset=only_bad", f"dataset_dir={data}", f"output_dir={tmp_path / 'run'}",
                  env=tunelab_env, ok=False).stderr
    assert "dataset 'only_bad': none of its 2 rows can be used" in err
    assert f"{data / 'only_bad.json'}:1: missing column 'label' (kto_tag); the row has columns " \
           "'messages', 'kto'" in err
    assert f"{data / 'only_bad.json'}:2: column 'label' (kto_tag) must be true" in err and "got null" in err
    assert "Traceback" not in err and not (tmp_path / "run").exists()


def test_kto_needs_two_rows_per_micro_batch(tmp_path, tunelab_env):
    err = tunelab("train", "examples/tiny_lora_kto.yaml", "per_device_train_batch_size=1",
                  f"output_dir={tmp_path / 'run'}", env=tunelab_env, ok=False).stderr
    assert "key 'per_device_train_batch_size': conflicts with 'stage': stage kto needs at least 2 " \
           "rows per micro-batch, got 1" in err
    assert "Traceback" not in err and not (tmp_path / "run").exists()
