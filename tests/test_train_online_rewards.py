"""Online stages (grpo, rloo) through the real CLI: a reward model scores the completions, and
what the trainer logged is checked against the reward model run evaluated independently
(transformers + PEFT on the text its own chat template renders), both for the rm loaded in the
run (reward_model_type lora) and for a live `tunelab api` scoring server (api); rloo learns
what a reward of the user's own asks for.

The policy renders its prompts with the alpaca template, the reward model was trained with
ChatML: scoring the completions in the policy's format (what TRL's own reward-model path does)
gives other numbers, so the equality below can only hold when the rm's template is used.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from test_infer_support import free_port, start_api, stop
from test_train_rm import LORA_RUN, rm_env, trained_rm, tunelab

# A reward of the user's own that records what TRL hands the rewards, and adds nothing.
RECORDER = '''
import json, os


def record(prompts, completions, **kwargs):
    with open(os.environ["RECORDED"], "a") as out:
        out.write(json.dumps({"prompts": prompts, "completions": completions}) + "\\n")
    return [0.0] * len(completions)
'''
DIGITS = '''
def numeric_share(completions, **kwargs):
    texts = [completion[-1]["content"] for completion in completions]
    return [sum(ch.isdigit() for ch in text) / max(len(text), 1) for text in texts]
'''
SAMPLING = ["finetuning_type=lora", "lora_target=all", "additional_target=embed_tokens,lm_head",
            "dataset=grpo_math_demo", "num_generations=4", "max_completion_length=8",
            "per_device_train_batch_size=8", "learning_rate=3e-2", "logging_steps=1",
            "temperature=1.0", "top_p=1.0", "top_k=0", "save_steps=1000", "plot_loss=false"]


@pytest.fixture(scope="module")
def env(tunelab_home, tmp_path_factory) -> dict[str, str]:
    modules = tmp_path_factory.mktemp("reward-modules")
    (modules / "recorder.py").write_text(RECORDER)
    (modules / "digits.py").write_text(DIGITS)
    return {**os.environ, "TUNELAB_HOME": str(tunelab_home), "HF_HUB_OFFLINE": "1", "NO_COLOR": "1",
            "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
            "PYTHONPATH": f"{os.environ.get('PYTHONPATH', '')}{os.pathsep}{modules}"}


@pytest.fixture(scope="module")
def rm_run(tmp_path_factory, tiny_chat_path, tunelab_home) -> Path:
    """The session's LoRA rm run (test_train_rm trains it once for every module that asks)."""
    return trained_rm(tmp_path_factory, LORA_RUN[0], tiny_chat_path, rm_env(tunelab_home), *LORA_RUN[1:])


def step_logs(run: Path) -> list[dict]:
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    return [e for e in events if e["type"] == "log"]


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def plain_rm(rm_run, tiny_chat_path):
    """score(prompt messages, answer, tokenizer=None): the rm run's reward with transformers + PEFT
    only, one unpadded text rendered by ``tokenizer``'s chat template (default: the run's)."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    own = AutoTokenizer.from_pretrained(rm_run)
    base = AutoModelForSequenceClassification.from_pretrained(tiny_chat_path, num_labels=1)
    model = PeftModel.from_pretrained(base, rm_run).eval()

    def score(messages: list[dict], answer: str, tokenizer=None) -> float:
        tokenizer = tokenizer or own
        text = tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": answer}],
                                             tokenize=False)
        ids = own(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            return model(input_ids=ids).logits[0, 0].item()

    return score


def step_mean(pairs: list[tuple[list[dict], str]], score) -> float:
    """The mean reward of a step's non-empty completions (an empty one is not scored)."""
    values = [score(messages, answer) for messages, answer in pairs if answer.strip()]
    return sum(values) / len(values)


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, rm_run, tiny_chat_path, env):
    """grpo on one prompt, repeated (so a step's scores differ by their completions alone, not
    by which prompts the step drew), rewarded by the rm run and the recorder."""
    out = tmp_path_factory.mktemp("grpo-rm") / "run"
    data = out.parent / "data"
    data.mkdir()
    (data / "one.json").write_text(json.dumps([{"instruction": "Say something about the river."}] * 48))
    (data / "dataset_info.json").write_text(json.dumps(
        {"one_prompt": {"file_name": "one.json", "columns": {"prompt": "instruction"}}}))
    recorded = out.parent / "recorded.jsonl"
    proc = tunelab("train", f"model_name_or_path={tiny_chat_path}", "stage=grpo", "template=alpaca",
                   *SAMPLING, "dataset=one_prompt", f"dataset_dir={data}", "reward_funcs=recorder:record",
                   f"reward_model={rm_run}", "max_steps=24", f"output_dir={out}",
                   env={**env, "RECORDED": str(recorded)})
    return out, read_lines(recorded), proc


@pytest.mark.slow
def test_grpo_logs_the_rm_runs_own_scores_of_each_step(lora_run, plain_rm, tiny_chat_path):
    from transformers import AutoTokenizer

    out, calls, proc = lora_run
    logs = step_logs(out)
    assert [e["step"] for e in logs] == list(range(1, 25)) and len(calls) == 24
    assert calls[0]["prompts"][0] == [{"role": "user", "content": "Say something about the river."}]
    assert "grpo: rewards recorder:record; reward_model (lora: " in proc.stdout
    for event, call in zip(logs, calls):
        pairs = [(p, c[-1]["content"]) for p, c in zip(call["prompts"], call["completions"])]
        assert event["metrics"]["rewards/reward_model/mean"] == pytest.approx(
            step_mean(pairs, plain_rm), abs=1e-4), event["step"]
        assert event["metrics"]["rewards/record/mean"] == 0.0
    # The policy's own render (alpaca) of the same completions scores otherwise.
    policy = AutoTokenizer.from_pretrained(out)
    first = [(p, c[-1]["content"]) for p, c in zip(calls[0]["prompts"], calls[0]["completions"])]
    assert "### Instruction" in policy.apply_chat_template(first[0][0], tokenize=False)
    moved = [abs(plain_rm(m, a) - plain_rm(m, a, tokenizer=policy)) for m, a in first if a.strip()]
    assert max(moved) > 0.1, moved
    assert json.loads((out / "manifest.json").read_text())["status"] == "completed"


@pytest.mark.slow
def test_grpo_raises_the_reward_models_score(lora_run):
    rewards = [e["metrics"]["rewards/reward_model/mean"] for e in step_logs(lora_run[0])]
    first, last = sum(rewards[:6]) / 6, sum(rewards[-6:]) / 6
    print(f"reward model's mean score: first 6 steps {first:.3f}, last 6 steps {last:.3f}")
    assert last > first + 0.5, rewards


class Recorder(BaseHTTPRequestHandler):
    """Passes each POST on to the scoring server and keeps the request and the answer."""

    target = ""
    seen: list = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = urllib.request.Request(self.target, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as reply:
            answer = reply.read()
        self.seen.append((json.loads(body), json.loads(answer)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def scoring_server(rm_run):
    port = free_port()
    server = start_api(["--adapter", str(rm_run)], port)
    Recorder.target, Recorder.seen = f"http://127.0.0.1:{port}/v1/score", []
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{proxy.server_port}/v1/score", Recorder.seen
    proxy.shutdown()
    stop(server)


@pytest.mark.slow
def test_api_reward_model_logs_the_servers_scores(scoring_server, plain_rm, tiny_chat_path, env, tmp_path):
    url, seen = scoring_server
    out = tmp_path / "run"
    proc = tunelab("train", f"model_name_or_path={tiny_chat_path}", "stage=grpo", *SAMPLING,
                   f"reward_model={url}", "reward_model_type=api", "default_system=Answer briefly.",
                   "max_steps=3", f"output_dir={out}", env=env)
    assert f"grpo: rewards reward_model (api: {url})" in proc.stdout
    probe, *steps = seen
    assert probe[0]["input"][0]["prompt"] == "Hello"  # reached before the first step
    assert len(steps) == 3
    for event, (request, answer) in zip(step_logs(out), steps):
        items = request["input"]
        # a prompt with a system message travels as messages, for the server's own template
        assert items[0]["prompt"][0] == {"role": "system", "content": "Answer briefly."}
        served = answer["scores"]
        assert served == pytest.approx([plain_rm(i["prompt"], i["response"]) for i in items], abs=1e-4)
        assert event["metrics"]["rewards/reward_model/mean"] == pytest.approx(
            sum(served) / len(served), abs=1e-5)


@pytest.mark.slow
def test_rloo_learns_what_a_custom_reward_asks_for(tmp_path, tiny_chat_path, env):
    out = tmp_path / "run"
    proc = tunelab("train", f"model_name_or_path={tiny_chat_path}", "stage=rloo", *SAMPLING,
                   "reward_funcs=digits:numeric_share", "lr_scheduler_type=constant", "max_steps=20",
                   f"output_dir={out}", env=env)
    assert "= 8 completions per step = 2 prompts x 4 generations" in proc.stdout
    assert "rloo: rewards digits:numeric_share; grpo_beta=0: no reference model" in proc.stdout
    logs = step_logs(out)
    assert [e["step"] for e in logs] == list(range(1, 21))
    share = [e["metrics"]["rewards/numeric_share/mean"] for e in logs]
    first, last = sum(share[:6]) / 6, sum(share[-6:]) / 6
    print(f"rloo digit share: first 6 steps {first:.3f}, last 6 steps {last:.3f}")
    # A random model writes ~1% digits; the policy learns to answer in digits.
    assert first < 0.1 and last > 0.5, share
    assert "kl" not in logs[-1]["metrics"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["stage"] == "rloo"
    assert (out / "adapter_model.safetensors").is_file()
    args = torch.load(out / "training_args.bin", weights_only=False)  # what the trainer ran with
    assert type(args).__name__ == "RLOOConfig" and (args.beta, args.num_generations) == (0.0, 4)


def test_score_route_takes_a_prompt_as_messages(scoring_server):
    import httpx

    with httpx.Client(base_url=Recorder.target.rsplit("/v1/", 1)[0], timeout=60) as client:
        def scores(*inputs):
            reply = client.post("/v1/score", json={"input": list(inputs)})
            return reply.status_code, reply.json()

        user = [{"role": "user", "content": "Hi"}]
        _, text = scores({"prompt": "Hi", "response": "thanks"})
        _, messages = scores({"prompt": user, "response": "thanks"})
        assert messages["scores"] == pytest.approx(text["scores"], abs=1e-6)
        _, system = scores({"prompt": [{"role": "system", "content": "Be kind."}, *user], "response": "thanks"})
        assert abs(system["scores"][0] - text["scores"][0]) > 1e-4  # the system prompt is rendered
        bad = [([{"role": "assistant", "content": "x"}], "input.0.prompt.0"),
               ([*user, {"role": "assistant", "content": "x"}], "input.0.prompt"),
               ([{"role": "tool", "content": "x"}], "input.0.prompt.0"),
               ([{"role": "user", "content": 3}], "input.0.prompt.0.content")]
        for prompt, param in bad:
            status, body = scores({"prompt": prompt, "response": "thanks"})
            assert (status, body["error"]["param"]) == (400, param), body
