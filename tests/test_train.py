"""Training end to end through the real CLI: every method runs, learns, resumes and reports."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["max_steps=3", "logging_steps=1", "save_steps=100", "per_device_train_batch_size=4",
         "cutoff_len=128", "max_samples=16", "report_to=none"]


def tunelab(*args, env=None, check=True, timeout=600):
    proc = subprocess.run([sys.executable, "-m", "tunelab", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"tunelab {' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def events(run_dir):
    return [json.loads(line) for line in (Path(run_dir) / "events.jsonl").read_text().splitlines()]


def log_losses(run_dir):
    return {e["step"]: e["loss"] for e in events(run_dir) if e["type"] == "log"}


def greedy_reply(model, tokenizer, question, max_new_tokens=40):
    ids = tokenizer.apply_chat_template([{"role": "user", "content": question}],
                                        add_generation_prompt=True, return_tensors="pt",
                                        return_dict=True)
    out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


def identity_answers(question_starts):
    rows = json.loads((ROOT / "data" / "identity.json").read_text())
    answers = {}
    for row in rows:
        for start in question_starts:
            if row["instruction"] == start:
                answers[start] = row["output"].replace("{{name}}", "Tuney").replace("{{author}}", "TuneLab")
    return answers


@pytest.mark.slow
def test_lora_sft_learns_the_identity_answers(tmp_path, tunelab_env):
    out = tmp_path / "run"
    proc = tunelab("train", "examples/tiny_lora_sft.yaml", f"output_dir={out}", env=tunelab_env)
    assert "effective batch: 8 (per device) x 1 (gradient accumulation) x 1 (devices)" in proc.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert manifest["config_given"]["lora_rank"] == 8
    assert (out / "adapter_config.json").is_file() and (out / "loss.png").is_file()
    assert (out / "tokenizer_config.json").is_file()
    last = [e for e in events(out) if e["type"] == "log"][-1]
    assert {"step", "total_steps", "epoch", "loss", "lr", "grad_norm", "tokens_seen",
            "tokens_per_s", "elapsed_s", "eta_s"} <= set(last)

    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab.model import resolve_model_path

    base = AutoModelForCausalLM.from_pretrained(resolve_model_path("tunelab/tiny-chat"))
    model = PeftModel.from_pretrained(base, out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    rows = json.loads((ROOT / "data" / "identity.json").read_text())
    checked = 0
    for row in rows[:: max(len(rows) // 4, 1)][:4]:
        if row.get("input"):
            continue
        expected = row["output"].replace("{{name}}", "Tuney").replace("{{author}}", "TuneLab")
        reply = greedy_reply(model, tokenizer, row["instruction"], max_new_tokens=len(expected) + 8)
        assert reply.strip() == expected.strip(), (row["instruction"], reply)
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("method_args", [
    ["finetuning_type=full"],
    ["finetuning_type=freeze", "freeze_trainable_layers=1"],
    ["finetuning_type=lora", "use_dora=true"],
    ["finetuning_type=lora", "use_rslora=true", "lora_target=q_proj,v_proj"],
    ["finetuning_type=lora", "quantization_bit=4"],
    ["finetuning_type=lora", "quantization_bit=8"],
], ids=["full", "freeze", "dora", "rslora", "qlora4", "qlora8"])
def test_each_method_trains_and_saves(tmp_path, tunelab_env, method_args):
    out = tmp_path / "run"
    tunelab("train", "examples/tiny_lora_sft.yaml", f"output_dir={out}", "additional_target=null",
            *QUICK, *method_args, env=tunelab_env)
    losses = log_losses(out)
    assert sorted(losses) == [1, 2, 3] and all(v == v and v > 0 for v in losses.values())
    saved = {p.name for p in out.iterdir()}
    if "finetuning_type=lora" in method_args:
        assert "adapter_model.safetensors" in saved
        config = json.loads((out / "adapter_config.json").read_text())
        assert config["base_model_name_or_path"] == "tunelab/tiny-chat"
        assert config["use_dora"] == ("use_dora=true" in method_args)
    else:
        assert "model.safetensors" in saved and "config.json" in saved


def test_freeze_changes_only_the_last_layer(tmp_path, tunelab_env):
    out = tmp_path / "run"
    tunelab("train", "examples/tiny_full_sft.yaml", f"output_dir={out}", *QUICK,
            "finetuning_type=freeze", "freeze_trainable_layers=1", env=tunelab_env)
    from tunelab.model import resolve_model_path

    before = load_file(Path(resolve_model_path("tunelab/tiny-chat")) / "model.safetensors")
    after = load_file(out / "model.safetensors")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(".layers.1." in k for k in changed)


def test_pretraining_stage_runs(tmp_path, tunelab_env):
    out = tmp_path / "run"
    tunelab("train", "examples/tiny_lora_pt.yaml", f"output_dir={out}", *QUICK, env=tunelab_env)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stage"] == "pt" and manifest["status"] == "completed"
    assert manifest["data"]["stats"]["samples"] > 0


def test_resume_gives_the_same_losses_and_weights_as_an_uninterrupted_run(tmp_path, tunelab_env):
    common = ["examples/tiny_lora_sft.yaml", "overwrite_output_dir=false", "max_steps=6", "save_steps=3", "logging_steps=1",
              "per_device_train_batch_size=4", "max_samples=24", "cutoff_len=128"]
    full = tmp_path / "full"
    tunelab("train", *common, f"output_dir={full}", env=tunelab_env)
    # Simulate a run stopped after step 3: keep only what existed then.
    stopped = tmp_path / "stopped"
    shutil.copytree(full, stopped)
    shutil.rmtree(stopped / "checkpoint-6")
    for name in ("adapter_model.safetensors", "adapter_config.json", "loss.png"):
        (stopped / name).unlink()
    kept = [line for line in (stopped / "events.jsonl").read_text().splitlines()
            if json.loads(line).get("step", 0) <= 3 and json.loads(line)["type"] == "log"]
    (stopped / "events.jsonl").write_text("\n".join(kept) + "\n")

    refused = tunelab("train", *common, f"output_dir={stopped}", env=tunelab_env, check=False)
    assert refused.returncode == 2 and "resume_from_checkpoint=last" in refused.stderr
    proc = tunelab("train", *common, f"output_dir={stopped}", "resume_from_checkpoint=last",
                   env=tunelab_env)
    assert "resuming THIS run" in proc.stdout
    assert log_losses(stopped) == pytest.approx(log_losses(full), rel=1e-5)
    a = load_file(full / "adapter_model.safetensors")
    b = load_file(stopped / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_continue_from_adapter_starts_from_its_weights(tmp_path, tunelab_env):
    first = tmp_path / "first"
    tunelab("train", "examples/tiny_lora_sft.yaml", f"output_dir={first}", *QUICK,
            "additional_target=null", env=tunelab_env)
    second = tmp_path / "second"
    proc = tunelab("train", "examples/tiny_lora_sft.yaml", f"output_dir={second}", *QUICK,
                   "additional_target=null", f"adapter_name_or_path={first}", "learning_rate=0",
                   env=tunelab_env)
    assert "NEW run from the adapter weights" in proc.stdout
    a = load_file(first / "adapter_model.safetensors")
    b = load_file(second / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_two_process_ddp_on_cpu(tmp_path, tunelab_env):
    out = tmp_path / "ddp"
    env = {**tunelab_env, "NPROC_PER_NODE": "2"}
    proc = tunelab("train", "examples/tiny_lora_sft.yaml", f"output_dir={out}", *QUICK,
                   "additional_target=null", env=env)
    assert "x 2 (devices)" in proc.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert sorted(log_losses(out)) == [1, 2, 3]


def test_llama_factory_recipe_and_dataset_info_run_unchanged(tmp_path, tunelab_env):
    data_dir = tmp_path / "lf_data"
    data_dir.mkdir()
    rows = [{"q": f"What is {i} plus {i}?", "a": f"{i} plus {i} is {2 * i}.", "sys": "Be brief."}
            for i in range(12)]
    (data_dir / "sums.json").write_text(json.dumps(rows))
    (data_dir / "dataset_info.json").write_text(json.dumps({
        "sums": {"file_name": "sums.json", "columns": {"prompt": "q", "response": "a", "system": "sys"}}}))
    recipe = tmp_path / "lf.yaml"
    recipe.write_text(f"""
### model
model_name_or_path: tunelab/tiny-chat
trust_remote_code: true
### method
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 8
lora_target: all
### dataset
dataset: sums
dataset_dir: {data_dir}
template: qwen
cutoff_len: 128
max_samples: 1000
overwrite_cache: true
preprocessing_num_workers: 1
### output
output_dir: {tmp_path / 'out'}
logging_steps: 1
save_steps: 500
plot_loss: true
overwrite_output_dir: true
### train
per_device_train_batch_size: 4
gradient_accumulation_steps: 2
learning_rate: 1.0e-4
num_train_epochs: 1.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: false
ddp_timeout: 180000000
""")
    proc = tunelab("train", recipe, env=tunelab_env)
    assert "samples: 12" in proc.stdout
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert manifest["data"]["stats"]["samples"] == 12
    # The mapped system column reaches every trained sample, as the template renders it.
    from tunelab.config import load_config
    from tunelab.data.pipeline import prepare_datasets
    from tunelab.data.templates import apply_template
    from tunelab.model import load_tokenizer

    cfg = load_config(str(recipe), [])
    tokenizer = load_tokenizer(cfg.model)
    apply_template(tokenizer, cfg.data.template)
    texts = sorted(tokenizer.decode(row["input_ids"]) for row in prepare_datasets(cfg, tokenizer, "sft").train)
    expected = sorted(tokenizer.apply_chat_template(
        [{"role": "system", "content": r["sys"]}, {"role": "user", "content": r["q"]},
         {"role": "assistant", "content": r["a"]}], tokenize=False) for r in rows)
    assert all(text.startswith("<|im_start|>system\nBe brief.<|im_end|>") for text in texts)
    assert [t.strip() for t in texts] == [e.strip() for e in expected]


def test_bad_rows_are_reported_and_an_all_bad_dataset_writes_nothing(tmp_path, tunelab_env):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    good = [{"instruction": f"Say {i}", "output": f"{i}"} for i in range(6)]
    bad = [{"instruction": "No answer here", "output": ""}, {"question": "wrong column"}]
    (data_dir / "mixed.json").write_text(json.dumps(good + bad))
    (data_dir / "allbad.json").write_text(json.dumps(bad))
    (data_dir / "dataset_info.json").write_text(json.dumps({
        "mixed": {"file_name": "mixed.json"}, "allbad": {"file_name": "allbad.json"}}))
    out = tmp_path / "mixed_run"
    proc = tunelab("train", "examples/tiny_lora_sft.yaml", "dataset=mixed", f"dataset_dir={data_dir}",
                   f"output_dir={out}", *QUICK, env=tunelab_env)
    assert "mixed.json:7" in proc.stdout and "mixed.json:8" in proc.stdout
    out_bad = tmp_path / "bad_run"
    proc = tunelab("train", "examples/tiny_lora_sft.yaml", "dataset=allbad", f"dataset_dir={data_dir}",
                   f"output_dir={out_bad}", *QUICK, env=tunelab_env, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "allbad" in proc.stderr and "2" in proc.stderr
    assert not out_bad.exists()
