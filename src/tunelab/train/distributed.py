"""DeepSpeed and FSDP2 as the Hugging Face Trainer runs them: the TrainingArguments a recipe's
sharding keys become, and a check that the engine asked for is the one that runs.

FSDP on CPU: accelerate 1.16 turns FSDP on only for accelerator process groups (its
``AcceleratorState`` takes the FSDP branch for MULTI_GPU, MULTI_NPU, ... but not MULTI_CPU), so
``fsdp`` with CPU processes would silently train with DDP. torch's ``fully_shard`` itself works
on CPU under gloo, and so does accelerate's FSDP2 preparation once the state says FSDP:
``cpu_fsdp_state`` says so while the Trainer builds its Accelerator, which lets the CPU test
suite run the same FSDP2 path a GPU run takes. ``check_engine`` fails the run, rather than
training with another engine, if a future accelerate changes this.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from tunelab.errors import RunError

if TYPE_CHECKING:
    from tunelab.config.schema import Config
    from tunelab.runs import RunDir


def sharding_kwargs(cfg: "Config") -> dict[str, Any]:
    """TrainingArguments entries for the recipe's FSDP keys (``fsdp=True`` and the resolved
    ``fsdp_config``); DeepSpeed's ``deepspeed`` value passes through unchanged."""
    from tunelab.config.distributed import sharding

    found = sharding(cfg)
    if found.engine != "fsdp":
        return {}
    # transformers reads this when the model loads (FSDP-aware loading of the weights)
    os.environ["ACCELERATE_USE_FSDP"] = "true"
    return {"fsdp": True, "fsdp_config": dict(found.fsdp_config or {})}


@contextlib.contextmanager
def cpu_fsdp_state(args: Any) -> Iterator[None]:
    """While the Trainer is built: let accelerate set up FSDP for CPU processes (see the module
    docstring). Does nothing unless FSDP was asked for and the processes are CPU ones."""
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType

    shared = PartialState._shared_state
    if not args.fsdp_plugin_args or shared.get("distributed_type") != DistributedType.MULTI_CPU:
        yield
        return
    # AcceleratorState copies the process state and enables its FSDP plugin for GPU-like types
    shared["distributed_type"] = DistributedType.MULTI_GPU
    try:
        yield
    finally:
        # every later AcceleratorState() copies this again: keep it FSDP, not MULTI_CPU
        shared["distributed_type"] = DistributedType.FSDP


def engine_name(trainer: Any) -> str:
    """The engine the Trainer really runs: "fsdp2", "fsdp1", "deepspeed", "ddp" or "single"."""
    if trainer.is_fsdp_enabled:
        return f"fsdp{getattr(trainer.accelerator.state.fsdp_plugin, 'fsdp_version', 1)}"
    if trainer.is_deepspeed_enabled:
        return "deepspeed"
    return "ddp" if trainer.accelerator.num_processes > 1 else "single"


def check_engine(trainer: Any, cfg: "Config") -> str:
    """The engine that runs; RunError when it is not the one the recipe asked for."""
    from tunelab.config.distributed import sharding

    wanted = {"fsdp": "fsdp2", "deepspeed": "deepspeed"}.get(sharding(cfg).engine or "")
    running = engine_name(trainer)
    if wanted and running != wanted:
        raise RunError(f"the recipe asks for {wanted} but accelerate set up {running}",
                       where="keys 'fsdp' / 'deepspeed'",
                       hint="report this with `tunelab env`; remove the key to train with DDP")
    return running


def empty_saved_tensors(folder: Path) -> list[str]:
    """Tensors with no elements in the folder's ``*.safetensors`` files (headers only): what a
    ZeRO-3 or sharded save writes for parameters it did not gather."""
    from safetensors import safe_open

    empty = []
    for file in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            empty += [name for name in handle.keys() if 0 in handle.get_slice(name).get_shape()]
    return empty


def check_saved_weights(run: "RunDir") -> None:
    """Fail the run (status failed, RunError) when its saved model or adapter holds empty tensors
    instead of the trained weights gathered from the shards."""
    empty = empty_saved_tensors(run.path)
    if not empty:
        return
    problem = (f"the saved weights hold {len(empty)} empty tensor(s) ({', '.join(empty[:3])}): they "
               "are the local ZeRO-3/FSDP shards, not the weights gathered from every process")
    hint = ("in the DeepSpeed config set zero_optimization.stage3_gather_16bit_weights_on_model_save: "
            "true (examples/deepspeed/ds_z3.json has it); with FSDP keep state_dict_type FULL_STATE_DICT; "
            "the last checkpoint-N still holds the full training state")
    run.set_status("failed", error=problem, hint=hint)
    raise RunError(problem, where=f"run {run.path}", hint=hint)
