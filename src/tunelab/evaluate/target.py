"""What ``tunelab eval TARGET`` evaluates, and where its results go.

A TARGET is a run directory (an adapter run, a ``checkpoint-N`` folder, a full fine-tune), a
recipe (its model and adapters; a training recipe whose ``output_dir`` holds a trained run
evaluates that run), or a model (a folder, a hub id, ``tunelab/tiny-chat``). Results go into
the run's own folder (``<run>/eval/``); a model that is not a run gets ``<save_dir>/<name>/eval/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab.errors import ModelError

# Recipe keys that say what is evaluated or where; the rest of a recipe passes on as settings.
_MODEL_KEYS = ("model_name_or_path", "adapter_name_or_path", "dataset", "eval_dataset", "output_dir")


@dataclass
class EvalTarget:
    """One thing to evaluate: its base model (None: read from the adapter), adapters, the folder
    whose ``eval/`` receives the results, the name tables show, and a recipe's other keys."""

    spec: str
    model: str | None
    adapters: list[str]
    folder: Path
    label: str
    keys: dict[str, Any] = field(default_factory=dict)
    datasets: list[str] = field(default_factory=list)


def resolve_target(spec: str, save_dir: str | Path = "evals") -> EvalTarget:
    """The EvalTarget ``spec`` names; ModelError for a folder that holds no model or adapter."""
    path = Path(spec).expanduser()
    if spec.endswith((".yaml", ".yml")):
        return _from_recipe(spec, Path(save_dir))
    if path.is_dir():
        return _from_folder(spec, path, Path(save_dir))
    return EvalTarget(spec, spec, [], Path(save_dir) / _slug(spec), _short(spec))


def target_for(model: str | None, adapters: list[str], save_dir: str | Path = "evals") -> EvalTarget:
    """A model with adapters picked separately (the board's top bar): the last adapter is the
    one evaluated (earlier ones are merged into the base first) and receives the results."""
    from tunelab.infer.loading import adapter_display_name

    if not adapters:
        if not model:
            raise ModelError("no model given", where="model", hint="pick a model or an adapter")
        return resolve_target(model, save_dir)
    return EvalTarget(adapters[-1], model, list(adapters), Path(adapters[-1]),
                      adapter_display_name(adapters[-1]))


def _from_folder(spec: str, path: Path, save_dir: Path) -> EvalTarget:
    from tunelab.infer.loading import adapter_display_name

    if (path / "adapter_config.json").is_file():
        return EvalTarget(spec, None, [spec], path, adapter_display_name(spec))
    if (path / "config.json").is_file():
        folder = path if (path / "manifest.json").is_file() else save_dir / path.resolve().name
        return EvalTarget(spec, spec, [], folder, path.resolve().name)
    raise ModelError(f"{path} holds neither a model (config.json) nor an adapter (adapter_config.json)",
                     where=f"target {spec}", hint="give a run directory, a checkpoint-N folder, "
                     "a recipe, or a model name such as tunelab/tiny-chat")


def _from_recipe(spec: str, save_dir: Path) -> EvalTarget:
    """A recipe's model and adapters; without adapters, the run its output_dir holds, if any."""
    from tunelab.config import load_config

    cfg = load_config(spec)
    keys = {k: v for k, v in cfg.given.items() if k not in _MODEL_KEYS}
    datasets = list(cfg.data.eval_dataset or cfg.data.dataset or [])
    adapters = list(cfg.model.adapter_name_or_path or [])
    out = Path(cfg.output.output_dir) if cfg.output.output_dir else None
    if not adapters and out is not None and (out / "manifest.json").is_file():
        trained = _from_folder(str(out), out, save_dir)
        model = trained.model or cfg.model.model_name_or_path
        return EvalTarget(spec, model, trained.adapters, out, trained.label, keys, datasets)
    model = cfg.model.model_name_or_path
    folder = Path(adapters[-1]) if adapters and (Path(adapters[-1]) / "manifest.json").is_file() \
        else save_dir / _slug(model or adapters[-1])
    label = Path(spec).stem
    return EvalTarget(spec, model, adapters, folder, label, keys, datasets)


def unique_labels(targets: list[EvalTarget]) -> list[EvalTarget]:
    """Tables tell targets apart by label: a repeated one gets -2, -3, ..."""
    seen: dict[str, int] = {}
    for target in targets:
        count = seen.get(target.label, 0) + 1
        seen[target.label] = count
        if count > 1:
            target.label = f"{target.label}-{count}"
    return targets


def _short(name: str) -> str:
    return name.rstrip("/").split("/")[-1] or name


def _slug(name: str) -> str:
    return re.sub(r"[^\w.-]+", "--", name.strip("/")) or "model"
