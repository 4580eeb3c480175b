"""``tunelab train recipe.yaml [key=value ...]``."""

from __future__ import annotations

import argparse
import sys

from tunelab.cli.common import add_recipe_arguments, keys_epilog, load_recipe

DESCRIPTION = """Train a model as the recipe says (the `stage` key's stages; lora, freeze, full; QLoRA).

Going on from earlier work, two different things:
  resume_from_checkpoint=last      continue the SAME run (optimizer, scheduler, step, data position)
  adapter_name_or_path=DIR         start a NEW run from trained adapter weights, fresh optimizer

Ctrl-C or SIGTERM saves a checkpoint at the current step and stops (resume it with
resume_from_checkpoint=last); a second Ctrl-C stops at once. A NaN/inf loss stops the run as failed.

With several GPUs (or NPROC_PER_NODE=N), several nodes (NNODES, NODE_RANK, MASTER_ADDR,
MASTER_PORT), or a deepspeed / fsdp recipe, the command relaunches itself under torchrun."""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train", help="fine-tune a model from a YAML recipe",
                            description=DESCRIPTION, epilog=keys_epilog(),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add_recipe_arguments(parser)
    parser.add_argument("--dry-run", action="store_true",
                        help="print the resolved recipe, step plan and memory estimate, then stop "
                             "(loads the tokenizer and data to count samples, never the model)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tunelab.config.checks import check_can_train
    from tunelab.config.distributed import sharding
    from tunelab.train.launch import needs_launcher, relaunch, wanted_processes
    from tunelab.train.output import resolve_output, resolve_resume

    cfg = load_recipe(args)
    check_can_train(cfg)
    if args.dry_run:
        from tunelab.train.dry_run import dry_run

        print(dry_run(cfg).describe())
        return 0
    nproc = wanted_processes()
    if needs_launcher(nproc, sharding(cfg).engine is not None):
        run_path, run_name = resolve_output(cfg)
        resolve_resume(cfg, run_path)
        argv = ["train", *([args.recipe] if args.recipe else []), *args.overrides,
                f"output_dir={run_path}", f"run_name={run_name}"]
        return relaunch(argv, nproc)
    from tunelab.train.workflow import run_training

    run_training(cfg, command=["tunelab", *sys.argv[1:]])
    return 0
