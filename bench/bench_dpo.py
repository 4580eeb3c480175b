"""LoRA DPO throughput: ``tunelab train stage=dpo`` vs a plain TRL ``DPOTrainer`` script on the
same model, data (the same token ids) and settings.

Each run is its own subprocess (so peak RSS is its own); the two runners alternate for
``--repeats`` rounds, so drifting load on a shared machine hits both alike. One JSON line per
run: tokens/s (non-padding tokens of prompt + chosen and prompt + rejected, per second of
``trainer.train``), pairs/s, peak RSS, wall. Usage::

    python bench/bench_dpo.py --rows 64 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

RUNNERS = ("tunelab", "trl_baseline")


def recipe(opts: argparse.Namespace, out_dir: str) -> list[str]:
    return [f"model_name_or_path={opts.model}", "stage=dpo", "finetuning_type=lora", "lora_rank=8",
            "lora_target=all", "additional_target=null", "dataset=dpo_en_demo", "pref_beta=0.1",
            f"max_samples={opts.rows}", f"cutoff_len={opts.cutoff}",
            f"per_device_train_batch_size={opts.batch}", "num_train_epochs=1", "learning_rate=1e-4",
            "logging_steps=1000", "save_strategy=no", "report_to=none", f"output_dir={out_dir}",
            "overwrite_output_dir=true", "plot_loss=false", "seed=0"]


def tokenised_pairs(opts: argparse.Namespace, out_dir: str):
    """(tokenizer, dataset of prompt_ids/chosen_ids/rejected_ids) exactly as tunelab encodes them."""
    from tunelab.config import load_config
    from tunelab.data.pipeline import prepare_datasets
    from tunelab.data.templates import apply_template
    from tunelab.model import load_tokenizer

    cfg = load_config(None, recipe(opts, out_dir))
    tokenizer = load_tokenizer(cfg.model)
    apply_template(tokenizer, cfg.data.template)
    return tokenizer, prepare_datasets(cfg, tokenizer, "dpo").train


def run_tunelab(opts: argparse.Namespace, out_dir: str) -> float:
    from tunelab.config import load_config
    from tunelab.train import workflow

    original, start = workflow._train, [0.0]

    def timed(trainer, *args, **kwargs):
        start[0] = time.perf_counter()  # loading and tokenising are not timed
        return original(trainer, *args, **kwargs)

    workflow._train = timed
    workflow.run_training(load_config(None, recipe(opts, out_dir)))
    return time.perf_counter() - start[0]


def run_baseline(opts: argparse.Namespace, out_dir: str) -> float:
    """What a user would write with TRL alone: DPOTrainer + a LoRA peft_config on the same pairs
    as conversational text, tokenised by TRL with the same chat template."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    from tunelab.model import resolve_model_path
    from tunelab.resources import demo_data_dir

    tokenizer, _ = tokenised_pairs(opts, out_dir)
    rows = json.loads((demo_data_dir() / "dpo_en_demo.json").read_text(encoding="utf-8"))[:opts.rows]
    data = Dataset.from_list([{
        "prompt": [{"role": "user", "content": r["instruction"] + (f"\n{r['input']}" if r["input"] else "")}],
        "chosen": [{"role": "assistant", "content": r["chosen"]}],
        "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in rows])
    model = AutoModelForCausalLM.from_pretrained(resolve_model_path(opts.model))
    args = DPOConfig(output_dir=out_dir, per_device_train_batch_size=opts.batch, num_train_epochs=1,
                     learning_rate=1e-4, beta=0.1, logging_steps=1000, save_strategy="no",
                     report_to="none", seed=0, disable_tqdm=True, bf16=False,
                     gradient_checkpointing=False, max_length=None, use_cpu=True)
    trainer = DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                         peft_config=LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16,
                                                target_modules="all-linear"))
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start


def run_one(name: str, opts: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        _, data = tokenised_pairs(opts, tmp)
        prompt = sum(len(ids) for ids in data["prompt_ids"])
        tokens = 2 * prompt + sum(map(len, data["chosen_ids"])) + sum(map(len, data["rejected_ids"]))
        wall = run_tunelab(opts, tmp) if name == "tunelab" else run_baseline(opts, tmp)
    return {"runner": name, "model": opts.model, "pairs": len(data), "tokens": tokens,
            "train_wall_s": round(wall, 2), "tokens_per_s": round(tokens / wall, 1),
            "pairs_per_s": round(len(data) / wall, 3),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=RUNNERS, help="run one runner in this process")
    parser.add_argument("--model", default="tunelab/bench-chat")
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--cutoff", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    opts = parser.parse_args()
    if opts.only:
        print(json.dumps(run_one(opts.only, opts)), flush=True)
        return
    passthrough = ["--model", opts.model, "--rows", str(opts.rows), "--cutoff", str(opts.cutoff),
                   "--batch", str(opts.batch)]
    for _ in range(opts.repeats):
        for name in RUNNERS:
            proc = subprocess.run([sys.executable, __file__, "--only", name, *passthrough],
                                  capture_output=True, text=True)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
            print(lines[-1] if lines else json.dumps({"runner": name, "error": proc.stderr[-2000:]}),
                  flush=True)


if __name__ == "__main__":
    main()
