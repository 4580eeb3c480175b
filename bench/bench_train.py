"""LoRA SFT throughput: TuneLab vs a plain Hugging Face Trainer + PEFT baseline, same data, same run.

Each configuration runs in its own subprocess (so peak RSS is its own) and prints one JSON line:
tokens/s (non-padding tokens of the training samples processed per second of ``trainer.train``),
samples/s, peak RSS and wall time. Usage::

    python bench/bench_train.py                       # all configurations, defaults below
    python bench/bench_train.py --only tunelab --rows 100 --epochs 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

CONFIGS = {
    # name: (runner, extra recipe keys)
    "tunelab": ("tunelab", []),  # defaults: padding-free batches, chunked loss
    "tunelab_packed": ("tunelab", ["packing=true"]),
    "tunelab_padded": ("tunelab", ["padding_free=false"]),
    "tunelab_full_logits": ("tunelab", ["chunked_loss=false"]),
    "tunelab_checkpointing": ("tunelab", ["gradient_checkpointing=true"]),
    "hf_peft_baseline": ("baseline", []),
}


def recipe_overrides(opts: argparse.Namespace, out_dir: str) -> list[str]:
    return [
        "model_name_or_path=tunelab/bench-chat", "stage=sft", "finetuning_type=lora",
        "lora_rank=8", "lora_target=all", "dataset=alpaca_en_demo,alpaca_zh_demo",
        f"max_samples={opts.rows // 2}", f"cutoff_len={opts.cutoff}",
        f"per_device_train_batch_size={opts.batch}", f"num_train_epochs={opts.epochs}",
        "learning_rate=1e-4", "logging_steps=1000", "save_strategy=no", "report_to=none",
        f"output_dir={out_dir}", "overwrite_output_dir=true", "plot_loss=false", "seed=0",
    ]


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def sample_tokens(opts: argparse.Namespace, out_dir: str) -> tuple[int, int]:
    """(samples, non-padding tokens) of the unpacked training data, identical for every runner."""
    from tunelab.config import load_config
    from tunelab.data.pipeline import prepare_datasets
    from tunelab.data.templates import apply_template
    from tunelab.model import load_tokenizer

    cfg = load_config(None, recipe_overrides(opts, out_dir) + ["packing=false"])
    tokenizer = load_tokenizer(cfg.model)
    apply_template(tokenizer, cfg.data.template)
    data = prepare_datasets(cfg, tokenizer, "sft").train
    return len(data), sum(len(ids) for ids in data["input_ids"])


def run_tunelab(opts: argparse.Namespace, extra: list[str], out_dir: str) -> float:
    from tunelab.config import load_config
    from tunelab.train import workflow

    cfg = load_config(None, recipe_overrides(opts, out_dir) + extra)
    start = time.perf_counter()
    original = workflow._train

    def timed(trainer, *args, **kwargs):
        nonlocal start
        start = time.perf_counter()  # exclude loading and tokenising from the timing
        return original(trainer, *args, **kwargs)

    workflow._train = timed
    workflow.run_training(cfg)
    return time.perf_counter() - start


def run_baseline(opts: argparse.Namespace, out_dir: str) -> float:
    """Plain Trainer + PEFT on the same tokenised rows, right-padded, no packing, no checkpointing."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from tunelab.config import load_config
    from tunelab.data.pipeline import prepare_datasets
    from tunelab.data.templates import apply_template
    from tunelab.model import load_tokenizer, resolve_model_path

    cfg = load_config(None, recipe_overrides(opts, out_dir) + ["packing=false"])
    tokenizer = load_tokenizer(cfg.model)
    apply_template(tokenizer, cfg.data.template)
    data = prepare_datasets(cfg, tokenizer, "sft").train
    data = data.remove_columns([c for c in data.column_names if c not in ("input_ids", "labels")])
    model = AutoModelForCausalLM.from_pretrained(resolve_model_path("tunelab/bench-chat"))
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16,
                                             target_modules="all-linear"))
    args = TrainingArguments(output_dir=out_dir, per_device_train_batch_size=opts.batch,
                             num_train_epochs=opts.epochs, learning_rate=1e-4, logging_steps=1000,
                             save_strategy="no", report_to="none", seed=0, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=data,
                      data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100))
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start


def run_one(name: str, opts: argparse.Namespace) -> dict:
    runner, extra = CONFIGS[name]
    with tempfile.TemporaryDirectory() as tmp:
        samples, tokens = sample_tokens(opts, tmp)
        wall = run_tunelab(opts, extra, tmp) if runner == "tunelab" else run_baseline(opts, tmp)
    return {"config": name, "samples": samples, "epochs": opts.epochs, "tokens": tokens * opts.epochs,
            "train_wall_s": round(wall, 2), "tokens_per_s": round(tokens * opts.epochs / wall, 1),
            "samples_per_s": round(samples * opts.epochs / wall, 3),
            "peak_rss_gb": round(peak_rss_bytes() / 1e9, 3), "threads": os.environ.get("OMP_NUM_THREADS")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(CONFIGS), help="run one configuration in this process")
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--cutoff", type=int, default=512)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated configurations")
    opts = parser.parse_args()
    if opts.only:
        print(json.dumps(run_one(opts.only, opts)), flush=True)
        return
    passthrough = ["--rows", str(opts.rows), "--cutoff", str(opts.cutoff), "--batch", str(opts.batch),
                   "--epochs", str(opts.epochs)]
    for name in opts.configs.split(","):
        proc = subprocess.run([sys.executable, __file__, "--only", name, *passthrough],
                              capture_output=True, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        print(lines[-1] if lines else json.dumps({"config": name, "error": proc.stderr[-2000:]}), flush=True)


if __name__ == "__main__":
    main()
