"""Memory estimate vs measurement: peak RSS of real CPU training steps, one fresh process per config.

Each probe runs in its own Python process: it imports everything, builds its training rows (full
rows of ``cutoff_len`` random token ids, as the estimate assumes), then resets the kernel's
peak-RSS counter (``/proc/self/clear_refs``) and records the resident set. Only then does it load
the model with TuneLab's own loader and adapters and run a few optimizer steps through the same
Trainer class ``tunelab train`` uses. The measured figure is peak RSS minus that baseline: weights,
adapters, gradients, optimizer state, activations, logits and whatever the CPU allocator adds.
It prints one JSON line per config with the measurement and the estimate beside it::

    python bench/bench_estimate.py                         # every config below
    python bench/bench_estimate.py --configs tiny_lora_b8  # some of them
    python bench/bench_estimate.py --probe model_name_or_path=tunelab/tiny-chat cutoff_len=512

The estimate is for an accelerator; the CPU has no CUDA context, so ``cpu_estimate_bytes`` is the
estimate without ``CUDA_CONTEXT_BYTES``. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE_STEPS = 3
MIB = 2**20
COMMON = ["torch_dtype=float32", "stage=sft", "lora_rank=8", "lora_target=all", "optim=adamw_torch",
          "learning_rate=1e-4", "report_to=none", "save_strategy=no", "logging_steps=1000", "seed=0"]
CONFIGS = {
    # name: recipe keys on top of COMMON
    "tiny_lora_b4_c512": ["model_name_or_path=tunelab/tiny-chat", "finetuning_type=lora",
                          "per_device_train_batch_size=4", "cutoff_len=512"],
    "tiny_lora_b8_c512": ["model_name_or_path=tunelab/tiny-chat", "finetuning_type=lora",
                          "per_device_train_batch_size=8", "cutoff_len=512"],
    "tiny_lora_b4_c1024": ["model_name_or_path=tunelab/tiny-chat", "finetuning_type=lora",
                           "per_device_train_batch_size=4", "cutoff_len=1024"],
    "tiny_full_logits_b4_c512": ["model_name_or_path=tunelab/tiny-chat", "finetuning_type=lora",
                                 "per_device_train_batch_size=4", "cutoff_len=512", "chunked_loss=false"],
    "tiny_lora_bf16_b4_c512": ["model_name_or_path=tunelab/tiny-chat", "finetuning_type=lora",
                              "per_device_train_batch_size=4", "cutoff_len=512", "torch_dtype=bfloat16"],
    "tiny_lora_autocast_b4_c512": ["model_name_or_path=tunelab/tiny-chat", "finetuning_type=lora",
                                   "per_device_train_batch_size=4", "cutoff_len=512",
                                   "torch_dtype=bfloat16", "bf16=true", "chunked_loss=false"],
    "tiny_full_bf16_b4_c512": ["model_name_or_path=tunelab/tiny-chat", "finetuning_type=full",
                               "per_device_train_batch_size=4", "cutoff_len=512", "torch_dtype=bfloat16"],
    "bench_lora_b1_c256": ["model_name_or_path=tunelab/bench-chat", "finetuning_type=lora",
                           "per_device_train_batch_size=1", "cutoff_len=256"],
    "bench_full_b1_c256": ["model_name_or_path=tunelab/bench-chat", "finetuning_type=full",
                           "per_device_train_batch_size=1", "cutoff_len=256"],
    "bench_lora_b2_c256": ["model_name_or_path=tunelab/bench-chat", "finetuning_type=lora",
                           "per_device_train_batch_size=2", "cutoff_len=256"],
}


def _proc_status(field: str) -> int:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> int:
    """Reset the peak-RSS counter to the current RSS and return it."""
    Path("/proc/self/clear_refs").write_text("5")
    return _proc_status("VmRSS")


def _rows(cfg, vocab_size: int) -> list[dict]:
    import torch

    batch = int(cfg.training_value("per_device_train_batch_size"))
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab_size, (PROBE_STEPS * batch, cfg.data.cutoff_len), generator=generator)
    return [{"input_ids": row, "attention_mask": torch.ones_like(row), "labels": row} for row in ids]


def _train(overrides: list[str], out: str) -> tuple[dict, int, float]:
    """Load and train the recipe for PROBE_STEPS steps; (a batch, bytes after loading, seconds)."""
    from transformers import AutoConfig, Trainer, default_data_collator

    from tunelab.config import load_config
    from tunelab.model import load_model, prepare_for_training, resolve_model_path
    from tunelab.train.loss import ChunkedLossTrainer
    from tunelab.train.workflow import training_arguments

    cfg = load_config(None, overrides)
    rows = _rows(cfg, AutoConfig.from_pretrained(resolve_model_path(cfg.model.model_name_or_path)).vocab_size)
    args = training_arguments(cfg, Path(out), "probe")
    args.max_steps = PROBE_STEPS
    baseline = _reset_peak()
    model = prepare_for_training(load_model(cfg.model, cfg.training), cfg)
    loaded = _proc_status("VmRSS") - baseline
    trainer_class = ChunkedLossTrainer if cfg.method.chunked_loss else Trainer
    trainer = trainer_class(model=model, args=args, train_dataset=rows, data_collator=default_data_collator)
    start = time.perf_counter()
    trainer.train()
    return {"trainer": trainer, "batch": default_data_collator(rows[:args.per_device_train_batch_size]),
            "baseline": baseline}, loaded, time.perf_counter() - start


def _saved_activation_bytes(trainer, batch: dict) -> int:
    """Bytes of the distinct tensors autograd saves in one forward of the decoder and the chunked
    loss under the Trainer's autocast (parameters excluded; the loss keeps no logits)."""
    import torch

    from tunelab.train.loss import causal_lm_parts, chunked_loss_sum

    body, head = causal_lm_parts(trainer.model)
    params = {p.untyped_storage().data_ptr() for p in trainer.model.parameters()}
    seen: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            seen.setdefault(storage.data_ptr(), storage.nbytes())
        return tensor

    features = {k: v for k, v in batch.items() if k != "labels"}
    with trainer.accelerator.autocast(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        chunked_loss_sum(body(**features).last_hidden_state, batch["labels"], head)
    return sum(seen.values())


def probe(overrides: list[str]) -> dict:
    """Train PROBE_STEPS steps of the recipe in this process; peak RSS above the pre-model baseline.

    A warm-up run of a tiny model first loads every lazily imported module and runtime pool, so
    the baseline does not charge them to the recipe."""
    import gc

    import torch

    with tempfile.TemporaryDirectory() as out:
        warm = [o for o in overrides if not o.startswith(("model_name_or_path=", "cutoff_len=",
                                                          "per_device_train_batch_size="))]
        _train(warm + ["model_name_or_path=tunelab/tiny-chat", "cutoff_len=16",
                       "per_device_train_batch_size=1"], out)
        gc.collect()
        state, loaded, wall = _train(overrides, out)
        peak = _proc_status("VmHWM") - state["baseline"]
        saved = _saved_activation_bytes(state["trainer"], state["batch"])
    return {"measured_bytes": peak, "after_load_bytes": loaded, "saved_activation_bytes": saved,
            "baseline_rss_bytes": state["baseline"], "train_wall_s": round(wall, 2),
            "threads": torch.get_num_threads()}


def estimate(overrides: list[str]) -> dict:
    """The estimator's components for the same recipe, and its total without the CUDA context."""
    from tunelab.config import load_config
    from tunelab.estimate import estimate_memory
    from tunelab.estimate.parts import CUDA_CONTEXT_BYTES

    est = estimate_memory(load_config(None, overrides))
    return {"estimate_bytes": est.total, "cpu_estimate_bytes": est.total - CUDA_CONTEXT_BYTES,
            "components_bytes": est.components()}


def run_probe(overrides: list[str], timeout: float = 900, live: bool = True) -> dict:
    """``probe`` in a fresh process (so nothing earlier counts), its JSON line as a dict.

    ``live``: glibc malloc serves every block of 64 KiB or more with its own mmap and returns it
    on free, so peak RSS follows the peak of live tensors (what torch.cuda.max_memory_allocated
    reports on a GPU). Without it, freed blocks stay in the heap and the peak also holds
    fragmentation, which varies from run to run."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if live:
        env["MALLOC_MMAP_THRESHOLD_"] = str(64 * 1024)
    proc = subprocess.run([sys.executable, __file__, "--probe", *overrides], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"probe failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def compare(name: str, live: bool = True) -> dict:
    overrides = COMMON + CONFIGS[name]
    measured = run_probe(overrides, live=live)
    row = {"config": name, "allocator": "live" if live else "default", **measured, **estimate(overrides)}
    row["ratio"] = round(row["cpu_estimate_bytes"] / row["measured_bytes"], 3)
    row["measured_mib"] = round(row["measured_bytes"] / MIB, 1)
    row["cpu_estimate_mib"] = round(row["cpu_estimate_bytes"] / MIB, 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--probe", nargs=argparse.REMAINDER,
                        help="measure one recipe (key=value ...) in this process and print its JSON line")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated configurations")
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc malloc's settings alone (peak then includes heap fragmentation)")
    opts = parser.parse_args()
    if opts.probe is not None:
        print(json.dumps(probe(opts.probe)), flush=True)
        return
    for name in opts.configs.split(","):
        print(json.dumps(compare(name, live=not opts.default_malloc)), flush=True)


if __name__ == "__main__":
    main()
