"""``tunelab estimate recipe.yaml [key=value ...]``: peak GPU memory and time before training."""

from __future__ import annotations

import argparse
import json
from typing import Any

from tunelab.cli.common import add_recipe_arguments, load_recipe
from tunelab.errors import ConfigError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "estimate", help="estimate peak GPU memory (and time) of a recipe before training",
        description="Price a recipe's training step from the model's config.json alone: weights, "
                    "adapters, gradients, optimizer state, activations, logits and overhead; say "
                    "whether it fits the GPU and what to change when it does not.")
    add_recipe_arguments(parser)
    parser.add_argument("--gpu-memory", help="memory per GPU, e.g. 24GB, 80GiB, 16000MB (default: "
                        "the detected GPU, or the --gpu model's)")
    parser.add_argument("--gpus", type=int, help="number of GPUs the run will use (default: "
                        "NPROC_PER_NODE x NNODES when set, as `tunelab train` launches, else 1)")
    parser.add_argument("--gpu", help="GPU model for memory and throughput when none is detected: "
                        + ", ".join(_device_names()))
    parser.add_argument("--calibrate", action="store_true",
                        help="measure throughput with a few steps of the architecture on this machine")
    parser.add_argument("--calibrate-steps", type=int, default=3, help="timed steps for --calibrate")
    parser.add_argument("--samples", type=int, help="rows in the training data (for the total time)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.set_defaults(func=run)


def _launched_gpus() -> int:
    """The processes `tunelab train` would launch from the same environment variables."""
    import os

    from tunelab.config.machine import launch_problems

    problems = launch_problems()
    if problems:
        raise ConfigError.combine(problems)
    return int(os.environ.get("NPROC_PER_NODE") or 1) * int(os.environ.get("NNODES") or 1)


def _device_names() -> list[str]:
    from tunelab.estimate.timing import DEVICES

    return list(DEVICES)


def run(args: argparse.Namespace) -> int:
    from tunelab.cli.format_estimate import format_estimate, format_time
    from tunelab.estimate import estimate_memory

    device_name, memory = _device(args)
    if args.gpus is None:
        args.gpus = _launched_gpus()
    if args.gpus < 1:
        raise ConfigError(f"must be at least 1, got {args.gpus}", where="--gpus")
    cfg = load_recipe(args)
    est = estimate_memory(cfg, gpu_memory_bytes=memory, num_gpus=args.gpus)
    timing = _time_estimate(args, cfg, est, device_name)
    if args.json:
        payload = est.to_dict()
        payload["device"] = device_name
        payload["time"] = timing.to_dict() if timing else None
        print(json.dumps(payload, indent=2))
        return 0
    print(format_estimate(est))
    if timing:
        print(format_time(timing))
    else:
        print("time: unknown device throughput; pass --gpu NAME or --calibrate")
    return 0


def _device(args: argparse.Namespace) -> tuple[str | None, int | None]:
    """(table device name, memory per GPU in bytes) from the flags, else the detected GPU."""
    from tunelab.estimate import detect_device_memory, parse_size
    from tunelab.estimate.timing import DEVICES, match_device

    name = None
    if args.gpu:
        name = match_device(args.gpu)
        if name is None:
            raise ConfigError(f"unknown GPU model {args.gpu!r}", where="--gpu",
                              hint=f"use one of: {', '.join(DEVICES)}, or give --gpu-memory alone")
    if args.gpu_memory is not None:
        try:
            return name, parse_size(args.gpu_memory)
        except ValueError as exc:
            raise ConfigError(str(exc), where="--gpu-memory",
                              hint="write the memory per GPU, e.g. --gpu-memory 24GB") from None
    if name:
        return name, DEVICES[name][0] * 1024**3
    detected = detect_device_memory()
    return (_detected_name() if detected else None), detected


def _detected_name() -> str | None:
    import torch

    from tunelab.estimate.timing import match_device

    return match_device(torch.cuda.get_device_name(0))


def _time_estimate(args: argparse.Namespace, cfg: Any, est: Any, device_name: str | None) -> Any:
    from tunelab.estimate import timing

    if args.calibrate:
        from tunelab.estimate.shape import load_model_config

        m = cfg.model
        config = load_model_config(m.model_name_or_path, trust_remote_code=m.trust_remote_code,
                                   cache_dir=m.cache_dir, revision=m.model_revision)
        rate, source = timing.calibrate(config, est.plan, steps=max(1, args.calibrate_steps))
    elif device_name:
        rate, source = timing.table_rate(device_name)
    else:
        return None
    return timing.estimate_time(
        est.plan, est.shape, flops_per_second=rate, source=source,
        max_steps=cfg.training_value("max_steps"), epochs=cfg.training_value("num_train_epochs"),
        samples=args.samples)
