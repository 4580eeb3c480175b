"""The online stages' reward model before and around training: `stage: ppo` (a LLaMA-Factory
recipe) stops with one message, the reward_model keys are checked before anything loads, the
three reward_model_type loaders score alike, and a scoring endpoint that is down or answers
badly is named with its URL and status."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from tunelab.config import build_config
from tunelab.errors import ConfigError, ModelError

ROOT = Path(__file__).resolve().parents[1]
# LLaMA-Factory's examples/train_lora/llama3_lora_ppo.yaml, with the ppo_* keys it documents.
PPO_RECIPE = """\
model_name_or_path: meta-llama/Meta-Llama-3-8B-Instruct
reward_model: saves/llama3-8b/lora/reward
trust_remote_code: true
stage: ppo
do_train: true
finetuning_type: lora
lora_rank: 8
lora_target: all
dataset: identity,alpaca_en_demo
template: llama3
cutoff_len: 2048
max_samples: 1000
overwrite_cache: true
preprocessing_num_workers: 16
output_dir: {out}
logging_steps: 10
save_steps: 500
plot_loss: true
overwrite_output_dir: true
report_to: none
per_device_train_batch_size: 1
gradient_accumulation_steps: 8
learning_rate: 1.0e-5
num_train_epochs: 3.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: true
ddp_timeout: 180000000
max_new_tokens: 512
top_k: 0
top_p: 0.9
ppo_epochs: 4
ppo_buffer_size: 1
ppo_score_norm: true
ppo_whiten_rewards: true
ppo_target: 6.0
"""


def tunelab(*args, env, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunelab", *map(str, args)], capture_output=True,
                          text=True, timeout=600, env={**env, "NO_COLOR": "1", "OMP_NUM_THREADS": "1"},
                          cwd=cwd)


def test_a_ppo_recipe_stops_with_one_message(tmp_path, tunelab_env):
    out = tmp_path / "ppo-run"
    recipe = tmp_path / "llama3_lora_ppo.yaml"
    recipe.write_text(PPO_RECIPE.format(out=out))
    done = tunelab("train", recipe, env=tunelab_env)
    assert done.returncode == 2, done.stdout + done.stderr
    err = done.stderr
    assert "key 'stage': stage ppo is not available: TRL >= 1.13 no longer ships a PPOTrainer" in err
    assert "hint: use stage: grpo or stage: rloo with reward_model: <your rm run>" in err
    # one problem, not the ppo_* keys or the reward model: they are accepted
    assert "problems in the recipe" not in err and "unknown key" not in err and "Traceback" not in err
    assert not out.exists()


def fake_folder(path: Path, files: dict[str, dict]) -> str:
    path.mkdir(parents=True)
    for name, content in files.items():
        (path / name).write_text(json.dumps(content))
    return str(path)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, str]:
    """Folders as the checks read them (their files only, nothing is loaded)."""
    root = tmp_path_factory.mktemp("reward-folders")
    seq_cls = {"architectures": ["LlamaForSequenceClassification"]}
    return {"rm_adapter": fake_folder(root / "rm", {"adapter_config.json": {"task_type": "SEQ_CLS"}}),
            "rm_full": fake_folder(root / "full", {"config.json": seq_cls}),
            "causal": fake_folder(root / "causal", {"config.json": {"architectures": ["LlamaForCausalLM"]}}),
            "sft_adapter": fake_folder(root / "sft", {"adapter_config.json": {"task_type": "CAUSAL_LM"}})}


def problems(**keys) -> list[ConfigError]:
    recipe = {"stage": "grpo", "model_name_or_path": "tunelab/tiny-chat", "dataset": "grpo_math_demo", **keys}
    try:
        build_config(recipe)
    except ConfigError as exc:
        return exc.problems
    return []


def only(found: list[ConfigError]) -> str:
    assert len(found) == 1, [str(p) for p in found]
    return str(found[0])


def test_reward_model_keys_are_checked_before_loading(folders, tmp_path):
    lora, full = folders["rm_adapter"], folders["rm_full"]
    assert problems(reward_model=lora) == []  # reward_funcs may be empty with a reward model
    assert problems(stage="rloo", reward_model=full, reward_model_type="full") == []
    assert problems(reward_model=folders["causal"], reward_model_type="full",
                    reward_model_adapters=lora) == []  # an rm adapter on another base
    assert problems(reward_model="http://127.0.0.1:8000/v1/score", reward_model_type="api") == []
    cases = [
        ({}, "key 'reward_funcs': stage grpo needs at least one reward function or a reward_model"),
        ({"stage": "rloo"}, "stage rloo needs at least one reward function or a reward_model"),
        ({"reward_model": str(tmp_path / "nope")}, f"folder {tmp_path / 'nope'} not found"),
        ({"reward_model": folders["sft_adapter"]}, "is not a reward model: no stage rm run"),
        ({"reward_model": folders["causal"], "reward_model_type": "full"}, "untrained score head"),
        ({"reward_model": full}, "reward_model_type lora needs an rm adapter folder\n  hint: it "
                                 "holds a whole model: set reward_model_type: full"),
        ({"reward_model": lora, "reward_model_type": "full"}, "holds an adapter, not a whole model"),
        ({"reward_model": "localhost:8000/v1/score", "reward_model_type": "api"},
         "reward_model_type api needs a URL: 'localhost:8000/v1/score' is not an http:// or https://"),
        ({"reward_model": "http://host:port/x", "reward_model_type": "api"}, "has a bad port"),
        ({"reward_model": "http://127.0.0.1:8000/v1/score"}, "is a URL, not a folder\n  hint: set "
                                                             "reward_model_type: api"),
        ({"reward_model": lora, "reward_model_adapters": lora}, "applies to reward_model_type full only"),
        ({"reward_model": "http://h:1/v1/score", "reward_model_type": "api",
          "reward_model_quantization_bit": 4}, "key 'reward_model_quantization_bit': has no effect with "
                                               "reward_model_type api"),
        ({"reward_model_adapters": lora, "reward_funcs": "format"}, "set but reward_model is not"),
        ({"reward_model": folders["causal"], "reward_model_type": "full",
          "reward_model_adapters": f"{lora},{lora}"}, "2 adapters given; a reward model takes one"),
    ]
    for keys, expected in cases:
        assert expected in only(problems(**({"reward_funcs": None} | keys))), keys


def test_the_reward_model_keys_are_one_group_of_the_online_stages():
    from tunelab.config import spec_for

    for key in ("reward_funcs", "reward_model", "reward_model_type", "reward_model_adapters",
                "reward_model_quantization_bit"):
        spec = spec_for(key)
        assert spec.group == "rewards" and spec.when == {"stage": ("grpo", "rloo")}, spec
    assert spec_for("loss_type").when == {"stage": ("grpo",)}  # RLOOConfig has no loss_type
    cfg = build_config({"stage": "grpo", "reward_funcs": "format", "ppo_epochs": 4})
    assert any("'ppo_epochs' has no effect in TuneLab: TuneLab has no ppo stage" in n for n in cfg.notes)


@pytest.fixture(scope="module")
def rm_run(tmp_path_factory, tiny_chat_path, tunelab_home) -> Path:
    """The session's LoRA rm run (test_train_rm trains it once for every module that asks)."""
    from test_train_rm import LORA_RUN, rm_env, trained_rm

    return trained_rm(tmp_path_factory, LORA_RUN[0], tiny_chat_path, rm_env(tunelab_home), *LORA_RUN[1:])


@pytest.fixture(scope="module")
def merged_rm(rm_run, tiny_chat_path, tmp_path_factory) -> Path:
    """The rm run merged into a whole sequence-classification model folder (what a full rm run
    or a model from elsewhere looks like)."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = tmp_path_factory.mktemp("merged-rm")
    base = AutoModelForSequenceClassification.from_pretrained(tiny_chat_path, num_labels=1)
    PeftModel.from_pretrained(base, rm_run).merge_and_unload().save_pretrained(folder)
    AutoTokenizer.from_pretrained(rm_run).save_pretrained(folder)
    return folder


def test_every_local_reward_model_type_scores_as_the_rm_run(rm_run, merged_rm, tiny_chat_path):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tunelab.rewards.reward_model import load_reward_model

    prompts = [[{"role": "user", "content": "Say something about the river."}],
               [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "And now?"}]] * 2
    answers = ["river stone thanks quiet road.", "whatever paper table.", "", "thanks, little tower"]
    completions = [[{"role": "assistant", "content": a}] for a in answers]
    tokenizer = AutoTokenizer.from_pretrained(rm_run)
    plain = PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(
        tiny_chat_path, num_labels=1), rm_run).eval()
    expected = []
    for prompt, answer in zip(prompts, answers):
        text = tokenizer.apply_chat_template([*prompt, {"role": "assistant", "content": answer}], tokenize=False)
        with torch.no_grad():
            value = plain(**tokenizer(text, add_special_tokens=False, return_tensors="pt")).logits[0, 0].item()
        expected.append(value if answer else None)  # an empty answer is not scored
    base = {"stage": "grpo", "model_name_or_path": str(tiny_chat_path), "dataset": "x"}
    for keys in ({"reward_model": str(rm_run)},
                 {"reward_model": str(tiny_chat_path), "reward_model_type": "full",
                  "reward_model_adapters": str(rm_run)},
                 {"reward_model": str(merged_rm), "reward_model_type": "full"}):
        reward = load_reward_model(build_config({**base, **keys}), device="cpu")
        got = reward(prompts=prompts, completions=completions)
        assert got[2] is None and reward.__name__ == "reward_model"
        assert [g for g in got if g is not None] == pytest.approx([e for e in expected if e is not None],
                                                                   abs=1e-4), keys


class BadServer(BaseHTTPRequestHandler):
    """Answers every POST with ``answer`` (status, body)."""

    answer = (200, b"{}")

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        status, body = self.answer
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def bad_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), BadServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1/score"
    server.shutdown()


def test_an_endpoint_that_answers_badly_is_named_with_its_status(bad_server):
    from tunelab.rewards.endpoint import ScoreEndpoint

    pairs = [{"prompt": "hi", "response": "a"}, {"prompt": "hi", "response": "b"}]
    endpoint = ScoreEndpoint(bad_server)
    BadServer.answer = (200, json.dumps({"data": [{"index": 0, "score": 1.5}, {"index": 1, "score": -2}]}).encode())
    assert endpoint.score(pairs) == [1.5, -2.0]  # data[].score alone is read too
    cases = [((500, b'{"error": {"message": "model exploded"}}'), "answered HTTP 500: model exploded"),
             ((401, b"go away"), "answered HTTP 401: go away"),
             ((200, b"<html>"), "answered with something that is not JSON"),
             ((200, b'{"scores": [1.0]}'), "answered 1 scores for 2 inputs"),
             ((200, b'{"scores": [1.0, NaN]}'), "answered nan as score 1, not a finite number"),
             ((200, b'{"ok": true}'), "answered without a 'scores' list")]
    for answer, expected in cases:
        BadServer.answer = answer
        with pytest.raises(ModelError) as err:
            endpoint.score(pairs)
        assert f"the reward model endpoint {bad_server} {expected}" in str(err.value)


@pytest.mark.slow
def test_train_stops_before_the_first_step_when_the_endpoint_is_down(tmp_path, tunelab_env):
    from test_infer_support import free_port

    url = f"http://127.0.0.1:{free_port()}/v1/score"
    done = tunelab("train", "model_name_or_path=tunelab/tiny-chat", "stage=grpo", "dataset=grpo_math_demo",
                   f"reward_model={url}", "reward_model_type=api", "num_generations=2", "max_steps=1",
                   "per_device_train_batch_size=2", f"output_dir={tmp_path / 'run'}", env=tunelab_env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"the reward model endpoint {url} cannot be reached" in done.stderr
    assert "tunelab api --adapter RM_RUN" in done.stderr and "Traceback" not in done.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "cannot be reached" in manifest["error"]
