"""LoRA SFT throughput: TuneLab vs a plain Hugging Face Trainer + PEFT baseline (and, with
``--peer llamafactory``, LLaMA-Factory in its own venv), same model, data and settings, same run.

Each configuration runs in its own subprocess (so peak RSS is its own) and prints one JSON line:
tokens/s (non-padding tokens of the training samples, as TuneLab tokenises them, processed per
second of ``trainer.train``), samples/s, peak RSS and wall time. ``--rounds N`` repeats the list
N times, interleaved, and ends with the TuneLab / LLaMA-Factory ratios of each round. Usage::

    python bench/bench_train.py                       # all TuneLab configurations + HF baseline
    python bench/bench_train.py --peer llamafactory --rounds 2
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
import statistics
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mfu  # noqa: E402 - sibling files of this script
import peer_llamafactory  # noqa: E402

CONFIGS = {
    # name: (runner, extra recipe keys)
    "tunelab": ("tunelab", []),  # defaults: padding-free batches, chunked loss
    "tunelab_packed": ("tunelab", ["packing=true"]),
    "tunelab_padded": ("tunelab", ["padding_free=false"]),
    "tunelab_full_logits": ("tunelab", ["chunked_loss=false"]),
    "tunelab_checkpointing": ("tunelab", ["gradient_checkpointing=true"]),
    "tunelab_liger": ("tunelab", ["enable_liger_kernel=true"]),  # GPU arms (bench/gpu.sh)
    "tunelab_fa2": ("tunelab", ["flash_attn=fa2"]),
    "hf_peft_baseline": ("baseline", []),
    # LLaMA-Factory with its defaults (gradient checkpointing on), and with checkpointing off.
    "llamafactory": ("llamafactory", []),
    "llamafactory_no_gc": ("llamafactory", ["disable_gradient_checkpointing=true"]),
    "llamafactory_liger": ("llamafactory", ["enable_liger_kernel=true"]),
    "llamafactory_fa2": ("llamafactory", ["flash_attn=fa2"]),
}
GPU_ONLY = {"tunelab_liger", "tunelab_fa2", "llamafactory_liger", "llamafactory_fa2"}
PEER_CONFIGS = {"llamafactory": "tunelab,hf_peft_baseline,llamafactory"}


def recipe_overrides(opts: argparse.Namespace, out_dir: str) -> list[str]:
    method = ["lora_rank=8", "lora_target=all"] if opts.finetuning == "lora" else []
    precision = ["torch_dtype=bfloat16", "bf16=true"] if opts.bf16 else ["torch_dtype=float32"]
    return [
        f"model_name_or_path={opts.model}", "stage=sft", f"finetuning_type={opts.finetuning}",
        *method, *precision, "dataset=alpaca_en_demo,alpaca_zh_demo",
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
    """Plain Trainer (+ PEFT for LoRA) on the same tokenised rows, right-padded, no packing, no
    checkpointing."""
    import torch
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
    model = AutoModelForCausalLM.from_pretrained(resolve_model_path(opts.model),
                                                 dtype=torch.bfloat16 if opts.bf16 else torch.float32)
    if opts.finetuning == "lora":
        model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16,
                                                 target_modules="all-linear"))
    args = TrainingArguments(output_dir=out_dir, per_device_train_batch_size=opts.batch, bf16=opts.bf16,
                             num_train_epochs=opts.epochs, learning_rate=1e-4, logging_steps=1000,
                             save_strategy="no", report_to="none", seed=0, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=data,
                      data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100))
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start


def run_one(name: str, opts: argparse.Namespace) -> dict:
    runner, extra = CONFIGS[name]
    peer: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        samples, tokens = sample_tokens(opts, tmp)
        if runner == "llamafactory":
            peer = peer_llamafactory.run(opts, extra, tmp)
            wall = peer.pop("train_wall_s")
        else:
            wall = run_tunelab(opts, extra, tmp) if runner == "tunelab" else run_baseline(opts, tmp)
    rss = peer.pop("peak_rss_gb", None) or round(peak_rss_bytes() / 1e9, 3)
    result = {"config": name, "model": opts.model, "finetuning": opts.finetuning,
              "dtype": "bf16" if opts.bf16 else "fp32", "samples": samples, "epochs": opts.epochs,
              "tokens": tokens * opts.epochs, "train_wall_s": round(wall, 2),
              "tokens_per_s": round(tokens * opts.epochs / wall, 1),
              "samples_per_s": round(samples * opts.epochs / wall, 3),
              "peak_rss_gb": rss, "threads": os.environ.get("OMP_NUM_THREADS"), **peer}
    result.update(gpu_figures(opts, result, tokens / samples, peer))
    return result


def gpu_figures(opts: argparse.Namespace, result: dict, mean_row: float, peer: dict) -> dict:
    """Peak GPU memory (the peer reports its own) and MFU, when this ran on a GPU."""
    import torch

    if not torch.cuda.is_available():
        return {}
    from tunelab.model import resolve_model_path

    device = torch.cuda.get_device_name(0)
    peak = opts.peak_tflops or mfu.peak_tflops(device)
    flops = mfu.flops_per_token(resolve_model_path(opts.model), opts.finetuning, mean_row)
    gpu_gb = peer.get("peak_gpu_gb") or round(torch.cuda.max_memory_allocated() / 1e9, 3)
    return {"device": device, "peak_gpu_gb": gpu_gb, "peak_tflops": peak,
            "mfu": mfu.mfu(result["tokens_per_s"], flops, peak)}


def run_round(names: list[str], opts: argparse.Namespace, round_no: int) -> dict[str, dict]:
    passthrough = ["--rows", str(opts.rows), "--cutoff", str(opts.cutoff), "--batch", str(opts.batch),
                   "--epochs", str(opts.epochs), "--venv", opts.venv, "--model", opts.model,
                   "--finetuning", opts.finetuning, *(["--bf16"] if opts.bf16 else []),
                   *(["--peak-tflops", str(opts.peak_tflops)] if opts.peak_tflops else [])]
    results = {}
    for name in names:
        proc = subprocess.run([sys.executable, __file__, "--only", name, *passthrough],
                              capture_output=True, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        result = json.loads(lines[-1]) if lines else {"config": name, "error": proc.stderr[-2000:]}
        result.update(round=round_no, load_avg=round(os.getloadavg()[0], 1))
        print(json.dumps(result), flush=True)
        results[name] = result
    return results


def ratios(rounds: list[dict[str, dict]], ours: str = "tunelab", peer: str = "llamafactory") -> None:
    """TuneLab / peer tokens/s and peak RSS of each round where both ran, and their median."""
    pairs = [(r[ours], r[peer]) for r in rounds if "tokens_per_s" in r.get(ours, {})
             and "tokens_per_s" in r.get(peer, {})]
    if not pairs:
        return
    speed = [a["tokens_per_s"] / b["tokens_per_s"] for a, b in pairs]
    memory = [a["peak_rss_gb"] / b["peak_rss_gb"] for a, b in pairs]
    print(json.dumps({"ratio": f"{ours}/{peer}", "tokens_per_s": [round(x, 2) for x in speed],
                      "peak_rss": [round(x, 2) for x in memory],
                      "median_tokens_per_s": round(statistics.median(speed), 2),
                      "median_peak_rss": round(statistics.median(memory), 2)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(CONFIGS), help="run one configuration in this process")
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--cutoff", type=int, default=512)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--model", default="tunelab/bench-chat", help="model folder (or built-in name)")
    parser.add_argument("--finetuning", choices=("lora", "full"), default="lora")
    parser.add_argument("--bf16", action="store_true", help="bf16 weights and mixed precision")
    parser.add_argument("--peak-tflops", type=float, help="GPU dense bf16 peak for MFU "
                        "(default: looked up from the device name)")
    parser.add_argument("--configs", help="comma-separated configurations (default: every TuneLab "
                        "one and the HF baseline; with --peer: tunelab, the baseline and the peer)")
    parser.add_argument("--peer", choices=sorted(PEER_CONFIGS), help="race a peer framework too")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved repetitions of the list")
    parser.add_argument("--venv", default=str(peer_llamafactory.default_venv()),
                        help="LLaMA-Factory's virtual environment (installed there on first use)")
    opts = parser.parse_args()
    if opts.only:
        print(json.dumps(run_one(opts.only, opts)), flush=True)
        return
    default = PEER_CONFIGS[opts.peer] if opts.peer else ",".join(
        n for n, (runner, _) in CONFIGS.items() if runner != "llamafactory" and n not in GPU_ONLY)
    names = (opts.configs or default).split(",")
    if any(CONFIGS[n][0] == "llamafactory" for n in names):
        peer_llamafactory.ensure_venv(Path(opts.venv))  # install once, before any timing
    rounds = [run_round(names, opts, r) for r in range(1, opts.rounds + 1)]
    ratios(rounds)
    ratios(rounds, "tunelab", "hf_peft_baseline")


if __name__ == "__main__":
    main()
