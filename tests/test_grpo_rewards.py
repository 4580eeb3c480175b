"""grpo without training: the reward functions on hand-written completions, the errors for a
user's reward function, the recipe checks, the step plan against TRL's own arithmetic, and the
prompt tokens TRL samples from against the prompt chat gives the model."""

from __future__ import annotations

import json
import sys

import pytest

from tunelab.config import build_config
from tunelab.errors import ConfigError
from tunelab.rewards import load_rewards, required_columns
from tunelab.rewards.answers import answers_match, plain_match


def said(text: str) -> list[dict]:
    """A completion as GRPOTrainer gives it for conversational prompts."""
    return [{"role": "assistant", "content": text}]


# ---------------------------------------------------------------- built-in rewards

def test_accuracy_reward_on_hand_written_completions():
    (accuracy,) = load_rewards(["accuracy"], max_completion_length=32)
    completions = [
        said("17"),                                          # the bare answer
        said("12 + 5 = 17."),                                # the last number is the answer
        said("<think>12 + 5 is 16? no, 17</think>It is 16"),  # the reasoning is not the answer
        said("<think>hmm</think>The answer is \\boxed{17}"),
        said("I think 16, no: 18"),
        said("seventeen"),                                    # not a number, not the text
        said("Paris."),                                       # text answers: normalised text
        said("The capital is Paris, I guess"),
        said("\\frac{1}{2}"),                                 # maths: needs math-verify
        "1,000",                                              # plain-text completions too
        said("4"),
    ]
    answer = ["17", "17", "17", "17", "17", "17", "paris", "Paris", "0.5", "1000", None]
    assert accuracy(completions=completions, answer=answer) == \
        [1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, None]
    assert accuracy.__name__ == "accuracy"  # TRL logs rewards/accuracy/mean


def test_plain_comparison_without_math_verify():
    # What accuracy falls back to: text and numbers by value, no algebra.
    assert plain_match("x = 3/4", "0.75") and plain_match("-3.50", "-3.5")
    assert plain_match("答案是 17。", "17") and plain_match("  Paris ", "paris.")
    assert not plain_match("\\frac{1}{2}", "0.5") and not plain_match("18", "17")
    pytest.importorskip("math_verify")
    assert answers_match("\\frac{1}{2}", "0.5") and answers_match("$\\sqrt{4}$", "2")


def test_format_and_length_rewards():
    fmt, length = load_rewards(["format", "length"], max_completion_length=8)
    assert (fmt.__name__, length.__name__) == ("format", "length")
    completions = [said("<think>add them</think>17"), said("<think>add them</think>  "),
                   said("17"), said("<think>a</think><think>b</think>17"), said("<think>17")]
    assert fmt(completions=completions) == [1.0, 0.0, 0.0, 0.0, 0.0]
    # Free up to 3/4 of 8 tokens, then down by 1/2 per token to -1 at the limit.
    assert length(completion_ids=[[1] * n for n in (3, 6, 7, 8)]) == [0.0, 0.0, -0.5, -1.0]


# ---------------------------------------------------------------- a user's reward function

@pytest.fixture
def reward_module(tmp_path, monkeypatch):
    """A folder on sys.path for the reward modules a test writes (``write(name, source)``)."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name: str, source: str) -> None:
        (tmp_path / f"{name}.py").write_text(source)
        sys.modules.pop(name, None)
    yield write


def load_error(name: str) -> str:
    with pytest.raises(ConfigError) as err:
        load_rewards([name], max_completion_length=8)
    assert err.value.where == "key 'reward_funcs'"
    return str(err.value)


def test_custom_reward_is_loaded_and_its_columns_required(reward_module):
    reward_module("my_rewards", "def score(completions, difficulty, bonus=0, **kwargs):\n"
                                "    return [1.0] * len(completions)\n")
    (score,) = load_rewards(["my_rewards:score"], max_completion_length=8)
    assert score(completions=[said("a")], difficulty=[1], prompts=[[]]) == [1.0]
    assert list(required_columns(["my_rewards:score", "accuracy"])) == ["difficulty", "answer"]


def test_custom_reward_errors_name_the_problem(reward_module):
    assert "no module named 'nowhere.rewards'" in load_error("nowhere.rewards:score")
    reward_module("broken", "x = 1\ndef score(completions, **kwargs):\n    return 1 +\n")
    text = load_error("broken:score")
    assert "importing 'broken' failed: SyntaxError" in text and "line 3" in text
    reward_module("raises", "import json\nvalue = json.loads('{')\n")
    assert "JSONDecodeError" in load_error("raises:score") and "raises.py, line 2" in load_error("raises:score")
    reward_module("has_other", "def scores(completions, **kwargs):\n    return []\n")
    assert "has no 'score'" in load_error("has_other:score")
    assert "did you mean 'has_other:scores'?" in load_error("has_other:score")
    reward_module("no_kwargs", "def score(completions):\n    return []\n")
    assert "score(completions) takes no **kwargs" in load_error("no_kwargs:score")
    reward_module("positional", "def score(completions, /, **kwargs):\n    return []\n")
    assert "positional-only argument(s) completions" in load_error("positional:score")
    reward_module("not_callable", "score = [1.0]\n")
    assert "'score' is a list, not a function" in load_error("not_callable:score")


def test_the_readme_example_reward_runs_as_it_says(reward_module):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    source = readme.split("# my_rewards.py", 1)[1].split("```", 1)[0]
    reward_module("my_rewards", source.split("\n", 1)[1])
    (short,) = load_rewards(["my_rewards:short_answer"], max_completion_length=8)
    completions = [said("It is 17"), said("I am quite sure that it is 17 here"), said("18")]
    assert short(completions=completions, answer=["17"] * 3) == [1.0, 0.5, 0.0]
    assert required_columns(["my_rewards:short_answer"]) == {
        "answer": "reward function my_rewards:short_answer takes it as an argument"}


# ---------------------------------------------------------------- the recipe

def grpo_recipe(**keys) -> dict:
    return {"stage": "grpo", "model_name_or_path": "tunelab/tiny-chat", "dataset": "grpo_math_demo",
            **keys}


def test_recipe_checks_for_grpo():
    cfg = build_config(grpo_recipe(reward_funcs="accuracy, format,my.mod:f"))
    assert cfg.rl.reward_funcs == ["accuracy", "format", "my.mod:f"]
    with pytest.raises(ConfigError, match="stage grpo needs at least one reward function"):
        build_config(grpo_recipe())
    with pytest.raises(ConfigError, match=r"unknown reward function 'acuracy' \(did you mean 'accuracy'\?\)"):
        build_config(grpo_recipe(reward_funcs="acuracy"))
    with pytest.raises(ConfigError, match="for a function of yours write 'my.mod:score'"):
        build_config(grpo_recipe(reward_funcs="my.mod.score"))
    with pytest.raises(ConfigError, match="key 'do_sample'.*greedy decoding makes them all the same"):
        build_config(grpo_recipe(reward_funcs="accuracy", do_sample=False))


def test_use_vllm_is_refused_where_it_cannot_run():
    import torch

    from tunelab.config.checks import check_can_train

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="use_vllm needs a CUDA GPU, and this machine has none"):
        check_can_train(build_config(grpo_recipe(reward_funcs="accuracy", use_vllm=True)))


def test_num_generations_must_divide_the_completions_of_a_step():
    from tunelab.train.plan import plan_group_steps

    counts = dict(samples=40, rows=40, grad_accum=1, world_size=1, epochs=1.0, max_steps=-1)
    with pytest.raises(ConfigError) as err:
        plan_group_steps(**counts, batch_size=6, generations=4)
    assert err.value.where == "key 'num_generations'"
    assert "per_device_train_batch_size (6) x gradient_accumulation_steps (1) x devices (1) = 6" in str(err.value)
    assert "set num_generations to one of 2, 3, 6, or per_device_train_batch_size to 8" in str(err.value)
    with pytest.raises(ConfigError, match="one step needs 8 prompts .* and the data has 5"):
        plan_group_steps(**{**counts, "rows": 5}, batch_size=16, generations=2)


# ---------------------------------------------------------------- against TRL's GRPOTrainer

@pytest.fixture(scope="module")
def tiny_think(tiny_think_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_think_path), AutoTokenizer.from_pretrained(tiny_think_path)


def grpo_trainer(tiny_think, tmp_path, rows: list[dict], cfg, **args):
    from trl import GRPOConfig, GRPOTrainer
    from datasets import Dataset

    from tunelab.train.stages.context import hf_defaults_changed_by
    from tunelab.train.stages.grpo import grpo_values

    model, tokenizer = tiny_think
    config = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none",
                        **{**hf_defaults_changed_by(GRPOConfig), **grpo_values(cfg), **args})
    data = Dataset.from_list(rows)
    return GRPOTrainer(model=model, reward_funcs=lambda completions, **kw: [0.0] * len(completions),
                       args=config, train_dataset=data, processing_class=tokenizer)


def test_trl_samples_from_the_prompt_chat_gives_the_model(tiny_think, tmp_path):
    from tunelab.data.convert import to_sample
    from tunelab.data.encode_stages import encode_prompt
    from tunelab.data.pipeline import encoding_options
    from tunelab.data.registry import DatasetSpec
    from tunelab.infer.prompt import render_chat

    cfg = build_config(grpo_recipe(reward_funcs="accuracy", enable_thinking=False,
                                   default_system="Answer with a number."))
    options = encoding_options(cfg.data, "grpo")
    tokenizer = tiny_think[1]
    row = {"instruction": "What is 2 + 3?", "answer": 5, "level": "easy"}
    encoded = encode_prompt(to_sample(row, DatasetSpec(name="t"), "t.json:1", "grpo"), tokenizer, options)
    assert {k: encoded[k] for k in ("answer", "level")} == {"answer": "5", "level": "easy"}
    trainer = grpo_trainer(tiny_think, tmp_path, [encoded], cfg, num_generations=2,
                           per_device_train_batch_size=2)
    sampled_from = trainer._tokenize_prompts([encoded["prompt"]])[0][0]
    chat = render_chat(tokenizer, [{"role": "user", "content": row["instruction"]}],
                       enable_thinking=False, default_system="Answer with a number.")
    assert sampled_from == tokenizer(chat, add_special_tokens=False)["input_ids"]
    # Both settings matter to this template, so the check above could fail on either.
    assert chat != render_chat(tokenizer, [{"role": "user", "content": row["instruction"]}],
                               enable_thinking=True, default_system="Answer with a number.")
    assert "Answer with a number." in chat
    from tunelab.data.preview import preview_sample

    view = preview_sample(to_sample(row, DatasetSpec(name="t"), "t.json:1", "grpo"), tokenizer, options)
    assert view.rendered == chat and view.tokens == len(sampled_from)


@pytest.mark.parametrize("rows,batch,accum,generations,epochs", [
    (11, 4, 1, 2, 1.0), (20, 4, 3, 4, 2.0), (9, 6, 2, 3, 1.5)])
def test_plan_counts_the_steps_trl_runs(tiny_think, tmp_path, rows, batch, accum, generations, epochs):
    from tunelab.train.plan import plan_group_steps

    cfg = build_config(grpo_recipe(reward_funcs="accuracy"))
    data = [{"prompt": [{"role": "user", "content": f"q{i}"}], "answer": "1"} for i in range(rows)]
    trainer = grpo_trainer(tiny_think, tmp_path, data, cfg, num_generations=generations,
                           per_device_train_batch_size=batch, gradient_accumulation_steps=accum,
                           num_train_epochs=epochs)
    values = trainer.set_initial_training_values(trainer.args, trainer.get_train_dataloader())
    plan = plan_group_steps(samples=rows, rows=rows, batch_size=batch, grad_accum=accum, world_size=1,
                            epochs=epochs, max_steps=-1, generations=generations)
    assert (plan.steps_per_epoch, plan.total_steps) == (values[1], values[-1])
    assert plan.steps_per_epoch == rows // (batch * accum // generations)  # by hand, too


def test_events_carry_the_trainers_other_metrics(tmp_path):
    from tunelab.runs import RunDir
    from tunelab.train.callbacks import RunEventsCallback

    state = type("State", (), {"global_step": 2, "max_steps": 4, "epoch": 0.5, "num_input_tokens_seen": 10,
                               "is_world_process_zero": True})()
    callback = RunEventsCallback(RunDir(tmp_path))
    callback.on_log(None, state, None, logs={"loss": 0.5, "learning_rate": 1e-3, "reward": 0.25,
                                             "rewards/accuracy/mean": 0.25, "kl": float("nan"),
                                             "epoch": 0.5})
    (event,) = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert event["loss"] == 0.5 and event["lr"] == 1e-3
    assert event["metrics"] == {"reward": 0.25, "rewards/accuracy/mean": 0.25, "kl": None}
