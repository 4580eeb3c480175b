"""stage: dpo through the real CLI: it learns the demo preference, its first loss is the DPO
formula, every pref_loss learns to prefer held-out chosen answers (with LoRA, QLoRA, full
and freeze), it resumes, a continued
adapter is its own reference, bad pairs are named, and chat/export take the adapter. Log-probs
are computed here with plain torch from the chat template's own renders."""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tunelab.resources import demo_data_dir

ROOT = Path(__file__).resolve().parents[1]
DEMO = json.loads((demo_data_dir() / "dpo_en_demo.json").read_text(encoding="utf-8"))
TRAIN_ROWS, HELD_OUT = DEMO[:200], DEMO[260:300]

def tunelab(*args, env, check=True):
    proc = subprocess.run([sys.executable, "-m", "tunelab", *map(str, args)], capture_output=True,
                          text=True, timeout=900, env=env, cwd=ROOT)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def log_events(run):
    lines = (Path(run) / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["type"] == "log"]


def pair_tokens(tokenizer, row):
    """(prompt ids, chosen ids, rejected ids) from the template's own renders: the answer is
    what the full conversation adds after the prompt with its generation prompt."""
    question = row["instruction"] + (f"\n{row['input']}" if row["input"] else "")
    messages = [{"role": "user", "content": question}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                           return_dict=False)
    answers = []
    for side in ("chosen", "rejected"):
        full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": row[side]}],
                                             tokenize=True, return_dict=False)
        assert full[:len(prompt)] == prompt
        answers.append(full[len(prompt):])
    return prompt, *answers


@torch.no_grad()
def answer_logp(model, prompt, answer):
    ids = torch.tensor([prompt + answer])
    logps = torch.log_softmax(model(ids).logits[0, :-1].double(), dim=-1)
    targets = ids[0, 1:]
    return logps[torch.arange(len(targets)), targets][len(prompt) - 1:].sum().item()


def answer_scores(model, tokenizer, rows):
    """Per pair: (log p(chosen), log p(rejected)) and the two answers' token counts."""
    scores, lengths = [], []
    for row in rows:
        prompt, chosen, rejected = pair_tokens(tokenizer, row)
        scores.append([answer_logp(model, prompt, chosen), answer_logp(model, prompt, rejected)])
        lengths.append([len(chosen), len(rejected)])
    return torch.tensor(scores, dtype=torch.float64), torch.tensor(lengths, dtype=torch.float64)


def margins(model, tokenizer, rows):
    """Per pair: log p(chosen) - log p(rejected)."""
    scores, _ = answer_scores(model, tokenizer, rows)
    return scores[:, 0] - scores[:, 1]


def demo_dir(root, rows, name="pairs"):
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{name}.json").write_text(json.dumps(rows, ensure_ascii=False))
    info = json.loads((demo_data_dir() / "dataset_info.json").read_text())["dpo_en_demo"]
    (root / "dataset_info.json").write_text(json.dumps({name: {**info, "file_name": f"{name}.json"}}))
    return root


# Two bad pairs after the 200 good ones: the run names and skips them (rows 201 and 202).
BAD_PAIRS = [{**TRAIN_ROWS[0], "rejected": TRAIN_ROWS[0]["chosen"]}, {**TRAIN_ROWS[1], "rejected": ""}]
DPO_RUN = ["examples/tiny_lora_dpo.yaml", "dataset=pairs", "max_steps=16", "logging_steps=4",
           "save_steps=12", "cutoff_len=96", "learning_rate=2e-3", "plot_loss=false"]


@pytest.fixture(scope="module")
def dpo_run(tmp_path_factory, tunelab_home):
    """16 LoRA steps on the 200 training pairs, a checkpoint at step 12; (run, its stdout +
    stderr, the data folder)."""
    import os

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    root = tmp_path_factory.mktemp("dpo")
    data = demo_dir(root / "data", TRAIN_ROWS + BAD_PAIRS)
    out = root / "run"
    proc = tunelab("train", *DPO_RUN, f"dataset_dir={data}", f"output_dir={out}", env=env)
    return out, proc.stdout + proc.stderr, data


def load_policy(run):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab.model import resolve_model_path

    base = AutoModelForCausalLM.from_pretrained(resolve_model_path("tunelab/tiny-chat"))
    return PeftModel.from_pretrained(base, run).eval(), AutoTokenizer.from_pretrained(run)


def held_out_preference(policy, tokenizer, before=None):
    """On the 40 held-out pairs: the share of pairs whose chosen-minus-rejected margin grew over
    the base's, the mean growth, and the share where the model prefers the chosen answer per
    answer token, before and after. ``before``: the base's scores (default: ``policy`` with
    its adapter disabled).

    The chosen answers hold about 3x the tokens of the refusals, so a summed log-prob ranks the
    refusal first almost always, before and after training; the preference is therefore per
    answer token (length-normalised, as lm-eval's acc_norm). The untrained base is near chance."""
    after, lengths = answer_scores(policy, tokenizer, HELD_OUT)
    if before is None:
        with policy.disable_adapter():
            before, _ = answer_scores(policy, tokenizer, HELD_OUT)
    gain = (after[:, 0] - after[:, 1]) - (before[:, 0] - before[:, 1])

    def prefers(scores):
        per_token = scores / lengths
        return (per_token[:, 0] > per_token[:, 1]).float().mean().item()

    return (gain > 0).float().mean().item(), gain.mean().item(), prefers(before), prefers(after)


def test_lora_dpo_learns_to_prefer_the_chosen_answers_it_never_saw(dpo_run):
    run, output, _ = dpo_run
    assert "reference model: the base model with the LoRA adapter disabled (no second copy" in output
    policy, tokenizer = load_policy(run)
    # The trained model widens chosen-minus-rejected over the reference (DPO's preference, TRL's
    # rewards/accuracies) on >= 80% of pairs it was not trained on, and on average; and it
    # prefers the chosen answer itself.
    widened, mean_gain, before, after = held_out_preference(policy, tokenizer)
    assert widened >= 0.8 and mean_gain > 1.0, (widened, mean_gain)
    assert before <= 0.7 and after >= 0.8, (before, after)
    events = log_events(run)
    assert len(events) == 4
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"):
        assert all(key in e["metrics"] for e in events), events[0]
    assert events[-1]["metrics"]["rewards/margins"] > events[0]["metrics"]["rewards/margins"]
    assert events[-1]["loss"] < events[0]["loss"]
    # The progress line, as for sft: steps, then loss, DPO's margin and pair accuracy.
    last = events[-1]["metrics"]
    assert "16/16" in output and f"margin={last['rewards/margins']:.4f}" in output
    assert f"acc={last['rewards/accuracies']:.2f}" in output


def test_resume_from_a_checkpoint_repeats_the_uninterrupted_run(dpo_run, tmp_path, tunelab_env):
    from safetensors.torch import load_file

    run, _, data = dpo_run
    stopped = tmp_path / "stopped"  # the run as it was when stopped after step 12
    shutil.copytree(run, stopped)
    for later in stopped.glob("checkpoint-*"):
        if int(later.name.split("-")[1]) > 12:
            shutil.rmtree(later)
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        (stopped / name).unlink()
    proc = tunelab("train", *DPO_RUN, f"dataset_dir={data}", f"output_dir={stopped}",
                   "resume_from_checkpoint=last", env=tunelab_env)
    assert "resuming THIS run from" in proc.stdout and "checkpoint-12" in proc.stdout
    resumed, full = log_events(stopped), log_events(run)
    assert [e["step"] for e in resumed] == [4, 8, 12, 16]
    for a, b in zip(resumed, full):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["metrics"]["rewards/margins"] == pytest.approx(b["metrics"]["rewards/margins"],
                                                                rel=1e-4, abs=1e-6)
    a, b = load_file(run / "adapter_model.safetensors"), load_file(stopped / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_a_continued_adapter_is_measured_against_its_own_start(dpo_run, tmp_path, tunelab_env):
    # With learning rate 0 the policy stays the continued adapter: against TRL's copy of it the
    # first loss is exactly log 2; against the bare base it would be far below (the margin the
    # first run learned).
    run, _, _ = dpo_run
    out = tmp_path / "continued"
    data = demo_dir(tmp_path / "data", TRAIN_ROWS[:8])
    proc = tunelab("train", "examples/tiny_lora_dpo.yaml", "dataset=pairs", f"dataset_dir={data}",
                   f"adapter_name_or_path={run}", "learning_rate=0", "max_steps=1",
                   "logging_steps=1", "cutoff_len=96", "plot_loss=false", f"output_dir={out}",
                   env=tunelab_env)
    assert "reference model: the starting policy, i.e. the base with a frozen copy of the adapter " \
           "being continued" in proc.stdout
    first = log_events(out)[0]
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert first["metrics"]["rewards/margins"] == pytest.approx(0.0, abs=1e-6)


def test_first_step_loss_is_the_dpo_formula_from_policy_and_reference(tmp_path, tiny_chat_path,
                                                                      tunelab_env):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ref_dir = tmp_path / "ref"  # a reference unlike the policy, so the margin is not zero
    ref = AutoModelForCausalLM.from_pretrained(tiny_chat_path)
    torch.manual_seed(0)
    with torch.no_grad():
        for param in ref.parameters():
            param.add_(0.05 * torch.randn_like(param))
    ref.save_pretrained(ref_dir)
    rows, beta = TRAIN_ROWS[:4], 0.5
    out = tmp_path / "run"
    proc = tunelab("train", "examples/tiny_lora_dpo.yaml", f"model_name_or_path={tiny_chat_path}",
                   f"dataset_dir={demo_dir(tmp_path / 'data', rows)}", "dataset=pairs",
                   "finetuning_type=full", f"ref_model={ref_dir}", f"pref_beta={beta}",
                   "max_steps=1", "logging_steps=1", "per_device_train_batch_size=4",
                   "plot_loss=false", f"output_dir={out}", env=tunelab_env)
    assert f"reference model: {ref_dir} (ref_model), frozen" in proc.stdout
    tokenizer = AutoTokenizer.from_pretrained(out)
    policy = AutoModelForCausalLM.from_pretrained(tiny_chat_path).eval()
    delta = margins(policy, tokenizer, rows) - margins(ref.eval(), tokenizer, rows)
    expected = (-torch.nn.functional.logsigmoid(beta * delta)).mean().item()
    assert abs(expected - math.log(2)) > 0.01  # the check is not the trivial log 2
    assert log_events(out)[0]["loss"] == pytest.approx(expected, abs=1e-5)


@pytest.fixture(scope="module")
def loss_runs(dpo_run, tunelab_home):
    """One run per other pref_loss, each with another method, on dpo_run's 200 pairs and steps."""
    import os

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    data = dpo_run[2]
    methods = {"ipo": ["finetuning_type=full", "learning_rate=1e-3"],
               "hinge": ["quantization_bit=4", "learning_rate=5e-3"],
               "orpo": ["learning_rate=5e-3"],
               "simpo": ["finetuning_type=freeze", "freeze_trainable_layers=2",
                         "freeze_extra_modules=embed_tokens", "learning_rate=1e-3"]}
    runs = {}
    for loss, extra in methods.items():
        out = data.parent / loss
        proc = tunelab("train", *DPO_RUN, f"pref_loss={loss}", f"dataset_dir={data}", *extra,
                       "save_steps=100", f"output_dir={out}", env=env)
        runs[loss] = (out, proc.stdout)
    return runs


@pytest.mark.parametrize("loss", ["ipo", "hinge", "orpo", "simpo"])
def test_each_pref_loss_learns_to_prefer_the_chosen_answers_it_never_saw(loss_runs, loss):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab.model import resolve_model_path

    run, stdout = loss_runs[loss]
    events = log_events(run)
    losses = [e["loss"] for e in events]
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0] - 0.01, losses
    assert "rewards/margins" in events[-1]["metrics"]
    assert json.loads((run / "manifest.json").read_text())["status"] == "completed"
    if loss in ("orpo", "simpo"):
        assert f"reference model: none (pref_loss {loss} is reference-free)" in stdout
    if loss == "ipo":
        assert "reference model: a frozen copy of tunelab/tiny-chat" in stdout
    base_path = resolve_model_path("tunelab/tiny-chat")
    base = AutoModelForCausalLM.from_pretrained(base_path).eval()
    before, _ = answer_scores(base, AutoTokenizer.from_pretrained(base_path), HELD_OUT)
    if (run / "adapter_config.json").is_file():  # QLoRA: its adapter, on the unquantized base
        policy = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), run)
    else:  # full and freeze save the whole model
        policy = AutoModelForCausalLM.from_pretrained(run)
    widened, mean_gain, prefers_before, prefers_after = held_out_preference(
        policy.eval(), AutoTokenizer.from_pretrained(run), before)
    assert widened >= 0.8 and mean_gain > 1.0, (widened, mean_gain)
    assert prefers_before <= 0.7 and prefers_after >= 0.8, (prefers_before, prefers_after)


def test_qlora_dpo_saves_an_adapter_on_the_4bit_base(loss_runs):
    run, _ = loss_runs["hinge"]
    config = json.loads((run / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["config_resolved"]["quantization_bit"] == 4


def test_chat_and_export_take_the_dpo_adapter(dpo_run, tmp_path, tunelab_env):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run, _, _ = dpo_run
    question = HELD_OUT[0]["instruction"]
    chat = tunelab("chat", "--adapter", run, "--query", question, "do_sample=false",
                   "max_new_tokens=12", env=tunelab_env)
    assert chat.stdout.strip()
    out = tmp_path / "merged"
    tunelab("export", "--adapter", run, "--out", out, env=tunelab_env)
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": question}],
                                        add_generation_prompt=True, return_tensors="pt",
                                        return_dict=True)
    reply = merged.generate(**ids, max_new_tokens=12, do_sample=False)
    text = tokenizer.decode(reply[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert text.strip() and text.strip() in chat.stdout


def test_bad_pairs_are_named_with_file_row_and_reason_by_train_and_validate(dpo_run, tunelab_env):
    _, output, data = dpo_run
    # The file and its 1-based row, then the reason; the run trained on the 200 good pairs.
    same = "pairs.json:201: the chosen and rejected answers are the same"
    empty = "pairs.json:202: empty rejected answer (column 'rejected')"
    assert same in output and empty in output, output[-3000:]
    assert "pairs: 200/202 rows usable, 2 skipped" in output
    check = tunelab("data", "validate", "--stage", "dpo", "--dataset-dir", data, "pairs",
                    env=tunelab_env, check=False)
    assert check.returncode == 1, check.stdout + check.stderr
    assert same in check.stdout and empty in check.stdout
