"""Evaluation during training, through the real CLI: held-out rows (val_size) scored every
eval_steps on training's padding-free batches, the eval loss in events.jsonl, on the progress
line and as a second curve in loss.png, and the best checkpoint picked, loaded and recorded."""

import json

import pytest
import torch
from safetensors.torch import load_file

from test_evaluate import reference_loss
from test_train import events, tunelab

EVAL_RED = (0xD6, 0x27, 0x28)  # the eval curve's colour in loss.png (matplotlib's tab:red)
RECIPE = ["max_samples=12", "val_size=4", "max_steps=6", "logging_steps=1", "eval_strategy=steps",
          "eval_steps=2", "save_steps=2", "per_device_eval_batch_size=8", "load_best_model_at_end=true",
          # The eval loss falls as the model learns, so "best" = highest picks the first
          # evaluation: a record that merely named the last checkpoint would fail.
          "metric_for_best_model=eval_loss", "greater_is_better=true"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, tunelab_home):
    import os

    out = tmp_path_factory.mktemp("train-eval") / "run"
    env = {**os.environ, "TUNELAB_HOME": str(tunelab_home), "HF_HUB_OFFLINE": "1"}
    proc = tunelab("train", "examples/tiny_lora_sft.yaml", f"output_dir={out}", *RECIPE, env=env)
    return out, proc


def _evals(out):
    return {e["step"]: e for e in events(out) if e["type"] == "eval"}


@pytest.mark.slow
def test_eval_loss_is_logged_shown_and_plotted(run):
    out, proc = run
    evals = _evals(out)
    assert sorted(evals) == [2, 4, 6]
    for event in evals.values():
        assert event["loss"] == event["metrics"]["eval_loss"] > 0
    last = f"eval_loss={evals[6]['loss']:.4f}"
    assert last in proc.stderr  # the progress line
    from matplotlib.image import imread

    pixels = imread(out / "loss.png")[..., :3]
    red = torch.tensor(EVAL_RED, dtype=torch.float32) / 255
    near = (torch.from_numpy(pixels.copy()).float() - red).abs().max(dim=-1).values < 0.05
    assert int(near.sum()) > 200  # the eval curve (and its legend entry) is drawn


@pytest.mark.slow
def test_eval_loss_is_the_plain_loss_of_the_held_out_rows(run, tunelab_home):
    """The step-6 eval loss equals a per-sample forward pass by hand over the held-out rows with
    checkpoint-6's weights (the Trainer scored them in one padding-free batch)."""
    from transformers import AutoTokenizer

    from tunelab.config import load_config
    from tunelab.data.pipeline import prepare_datasets
    from tunelab.model.loader import resolve_model_path

    out, _ = run
    cfg = load_config("examples/tiny_lora_sft.yaml", [f"output_dir={out}", *RECIPE])
    prepared = prepare_datasets(cfg, AutoTokenizer.from_pretrained(out), "sft")
    assert len(prepared.eval) == 4 and len(prepared.train) == 8
    total, count = reference_loss(resolve_model_path("tunelab/tiny-chat"), out / "checkpoint-6",
                                  list(prepared.eval))
    assert _evals(out)[6]["loss"] == pytest.approx(total / count, rel=1e-4)


@pytest.mark.slow
def test_best_checkpoint_is_recorded_and_saved_as_the_model(run):
    out, proc = run
    evals = _evals(out)
    best_step = max(evals, key=lambda step: evals[step]["loss"])  # greater_is_better=true
    assert best_step == 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["best_checkpoint"] == f"checkpoint-{best_step}"
    assert manifest["best_metric"] == pytest.approx(evals[best_step]["loss"])
    assert manifest["metric_for_best_model"] == "eval_loss" and manifest["best_model_loaded"] is True
    final = load_file(out / "adapter_model.safetensors")
    best = load_file(out / f"checkpoint-{best_step}" / "adapter_model.safetensors")
    last = load_file(out / "checkpoint-6" / "adapter_model.safetensors")
    assert all(torch.equal(final[k], best[k]) for k in final)
    assert not all(torch.equal(final[k], last[k]) for k in final)


def test_eval_strategy_without_held_out_data_is_refused(tmp_path):
    from tunelab.config import load_config
    from tunelab.errors import ConfigError
    from tunelab.train.workflow import run_training

    for key in ("eval_strategy=steps", "load_best_model_at_end=true"):
        cfg = load_config("examples/tiny_lora_sft.yaml", [f"output_dir={tmp_path / 'run'}", key])
        with pytest.raises(ConfigError) as err:
            run_training(cfg)
        assert err.value.where == "key 'eval_strategy'" and "held-out data" in err.value.problem
        assert "val_size" in err.value.hint and "eval_dataset" in err.value.hint
    assert not (tmp_path / "run").exists()
