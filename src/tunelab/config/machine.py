"""What a recipe needs from the machine that trains it: optional packages, a CUDA device, a C
compiler, and launcher environment variables that make sense. ``tunelab train`` checks these
before it loads anything; ``tunelab estimate`` does not (it prices a recipe for another machine).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from typing import TYPE_CHECKING

from tunelab.errors import ConfigError

if TYPE_CHECKING:
    from tunelab.config.schema import Config

BNB_OPTIMIZERS = ("8bit", "bnb", "paged_")
LAUNCH_VARIABLES = ("NNODES", "NODE_RANK", "NPROC_PER_NODE")


def _missing(package: str) -> bool:
    return importlib.util.find_spec(package) is None


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _needs(key: str, value: object, why: str, hint: str) -> ConfigError:
    return ConfigError(why, where=f"key '{key}'", key=key, value=value, hint=hint)


def package_problems(cfg: "Config") -> list[ConfigError]:
    """Optional packages the recipe's keys load."""
    training, found = cfg.training, []
    if training.get("deepspeed") and _missing("deepspeed"):
        found.append(_needs("deepspeed", training["deepspeed"], "DeepSpeed is not installed",
                            "run `pip install deepspeed` (or `pip install 'tunelab[deepspeed]'`), "
                            "or remove the key to train without it"))
    if training.get("use_liger_kernel") and _missing("liger_kernel"):
        found.append(_needs("use_liger_kernel", True, "liger-kernel is not installed",
                            "run `pip install liger-kernel` (tunelab[liger]) on a CUDA machine, or remove the key"))
    optim = str(training.get("optim", ""))
    if any(mark in optim for mark in BNB_OPTIMIZERS) and _missing("bitsandbytes"):
        found.append(_needs("optim", optim, f"optimizer {optim} needs bitsandbytes",
                            "run `pip install bitsandbytes`, or use optim: adamw_torch"))
    if cfg.model.flash_attn == "fa2" and _missing("flash_attn"):
        found.append(_needs("flash_attn", "fa2", "FlashAttention 2 (flash-attn) is not installed",
                            "run `pip install flash-attn` on a CUDA machine, or use flash_attn: sdpa"))
    return found


def device_problems(cfg: "Config") -> list[ConfigError]:
    """Keys that need a CUDA GPU, or a C compiler on CPU."""
    found = []
    cuda = _has_cuda()
    if cfg.training.get("use_liger_kernel") and not cuda:
        found.append(_needs("use_liger_kernel", True, "Liger's kernels are Triton GPU kernels and "
                            "no CUDA device is visible", "remove use_liger_kernel on CPU"))
    if cfg.model.flash_attn == "fa2" and not cuda:
        found.append(_needs("flash_attn", "fa2", "FlashAttention 2 runs on CUDA GPUs only and none "
                            "is visible", "use flash_attn: sdpa (or auto) on CPU"))
    if cfg.training.get("torch_compile") and not cuda and not (shutil.which("cc") or shutil.which("gcc")):
        found.append(_needs("torch_compile", True, "torch.compile on CPU needs a C compiler and none "
                            "is on PATH", "install gcc (e.g. `apt-get install gcc`) or remove torch_compile"))
    return found


def launch_problems(environ: dict[str, str] | None = None) -> list[ConfigError]:
    """The torchrun variables (NNODES, NODE_RANK, NPROC_PER_NODE, MASTER_ADDR, MASTER_PORT)."""
    env = os.environ if environ is None else environ
    found, numbers = [], {}
    for name in LAUNCH_VARIABLES:
        text = env.get(name, "").strip()
        if text and not (text.isdigit() and (int(text) >= 1 or name == "NODE_RANK")):
            found.append(ConfigError(f"{name}={text!r} is not a whole number"
                                     + ("" if name == "NODE_RANK" else " >= 1"),
                                     where=f"environment variable {name}"))
        elif text:
            numbers[name] = int(text)
    nodes = numbers.get("NNODES", 1)
    if numbers.get("NODE_RANK", 0) >= nodes:
        found.append(ConfigError(f"NODE_RANK={numbers['NODE_RANK']} but NNODES={nodes}",
                                 where="environment variable NODE_RANK",
                                 hint=f"number the nodes 0 to {nodes - 1}"))
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if nodes > 1 and not env.get(name)]
    if missing:
        found.append(ConfigError(f"NNODES={nodes} needs {' and '.join(missing)}",
                                 where=f"environment variable {missing[0]}",
                                 hint="set MASTER_ADDR to node 0's address and MASTER_PORT to a free "
                                      "port there, the same on every node"))
    return found


def machine_problems(cfg: "Config") -> list[ConfigError]:
    """Everything this machine lacks for the recipe (empty when it can train it)."""
    return package_problems(cfg) + device_problems(cfg) + launch_problems()
