"""Load what a chat engine serves: one base model, its adapters (unmerged) and their tokenizers.

The chat template comes from where training put it: a run directory (or a ``checkpoint-N``
folder's run) saves the tokenizer with the template it trained on, so that tokenizer is used.
Only when an adapter carries no template do we fall back to the base's, with the recipe's
``template`` applied exactly as training applies it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.errors import ModelError
from tunelab.model.adapters import adapter_base_model, check_adapter_dir

if TYPE_CHECKING:
    from tunelab.config.schema import Config

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}


@dataclass
class ServedModel:
    """A name clients ask for: the base (``adapter`` None) or one adapter, with its tokenizer;
    ``stop_ids`` are the tokens that end an assistant turn in that tokenizer's template."""

    name: str
    adapter: str | None
    tokenizer: Any
    source: str
    stop_ids: frozenset[int] = frozenset()


def base_model_name(cfg: "Config") -> str:
    """The recipe's base, or the one the first adapter records in its adapter_config.json."""
    if cfg.model.model_name_or_path:
        return cfg.model.model_name_or_path
    adapters = cfg.model.adapter_name_or_path or []
    if adapters:
        base = adapter_base_model(adapters[0])
        if base:
            return base
        raise ModelError(f"{adapters[0]}/adapter_config.json does not name its base model",
                         where="key 'adapter_name_or_path'", hint="set model_name_or_path as well")
    raise ModelError("no model given", where="key 'model_name_or_path'",
                     hint="pass --model PATH, --adapter RUN_DIR, or a recipe with model_name_or_path")


def has_chat_template(folder: Path) -> bool:
    """Whether a saved tokenizer in ``folder`` carries its own chat template."""
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    config = folder / "tokenizer_config.json"
    if not config.is_file():
        return False
    try:
        return bool(json.loads(config.read_text(encoding="utf-8")).get("chat_template"))
    except (OSError, json.JSONDecodeError):
        return False


def adapter_tokenizer_dir(adapter: str) -> Path | None:
    """The folder whose tokenizer trained this adapter: the adapter's own, else its run's."""
    folder = Path(adapter)
    candidates = [folder]
    if re.fullmatch(r"checkpoint-\d+", folder.name):
        candidates.append(folder.parent)
    return next((c for c in candidates if has_chat_template(c)), None)


def _read_tokenizer(path: str, cfg: "Config") -> Any:
    import dataclasses

    from tunelab.model.loader import load_tokenizer

    # Generation pads on the left so every row's newest token sits in the last column.
    return load_tokenizer(dataclasses.replace(cfg.model, model_name_or_path=path), padding_side="left")


def _template_stops(tokenizer: Any, template: str | None) -> frozenset[int]:
    """Install ``template`` (None keeps the tokenizer's own) and return the ids that end a turn.
    The same ``apply_template`` as training, so the prompt format cannot drift between them."""
    from tunelab.data.templates import apply_template, stop_token_ids
    from tunelab.errors import DataError

    try:
        info = apply_template(tokenizer, template)
    except DataError as exc:
        raise ModelError(exc.problem, where=exc.where, hint=exc.hint) from None
    ids = set(stop_token_ids(tokenizer, info))
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return frozenset(ids)


def served_models(cfg: "Config", base_path: str) -> list[ServedModel]:
    """The base plus every adapter, each under a unique name, each with its training tokenizer."""
    base_name = base_model_name(cfg)
    base_tok = _read_tokenizer(base_path, cfg)
    base_stops = _template_stops(base_tok, cfg.data.template)
    shown = base_name if not Path(base_name).expanduser().exists() else Path(base_name).resolve().name
    models = [ServedModel(shown, None, base_tok, base_path, base_stops)]
    taken = {shown}
    for index, adapter in enumerate(cfg.model.adapter_name_or_path or []):
        check_adapter_dir(adapter)
        own = adapter_tokenizer_dir(adapter)
        tokenizer, stops = base_tok, base_stops
        if own:
            tokenizer = _read_tokenizer(str(own), cfg)
            stops = _template_stops(tokenizer, None)
        name = _unique(adapter_display_name(adapter), taken)
        taken.add(name)
        models.append(ServedModel(name, f"adapter{index}", tokenizer, adapter, stops))
    return models


def adapter_display_name(adapter: str) -> str:
    """``runs/sft-1`` -> ``sft-1``; ``runs/sft-1/checkpoint-50`` -> ``sft-1/checkpoint-50``."""
    folder = Path(adapter).resolve()
    if re.fullmatch(r"checkpoint-\d+", folder.name):
        return f"{folder.parent.name}/{folder.name}"
    return folder.name


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    return candidate


def check_memory(base_path: str, dtype: Any, device: str, quantized: bool) -> None:
    """Refuse, before loading, a model whose weights alone exceed the device's free memory."""
    need = weights_bytes(Path(base_path), dtype)
    if need is None or quantized:
        return
    free = free_memory(device)
    if free is not None and need > free:
        gib = 1024 ** 3
        raise ModelError(f"the model needs about {need / gib:.1f} GiB for its weights but {device} "
                         f"has {free / gib:.1f} GiB free", where=f"model {base_path}",
                         hint="use a smaller model, torch_dtype: bfloat16, quantization_bit: 4, "
                              "or a device with more memory")


def weights_bytes(folder: Path, dtype: Any) -> int | None:
    """Size the weights will take in ``dtype``, from the files on disk (None if not local)."""
    if not folder.is_dir():
        return None
    files = [f for f in folder.iterdir() if f.suffix in _WEIGHT_SUFFIXES]
    if not files:
        return None
    stored = _stored_dtype(folder)
    wanted = str(dtype).replace("torch.", "")
    scale = _DTYPE_BYTES.get(wanted, 2) / _DTYPE_BYTES.get(stored, 2)
    return int(sum(f.stat().st_size for f in files) * scale)


def _stored_dtype(folder: Path) -> str:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return "float32"
    return str(config.get("dtype") or config.get("torch_dtype") or "float32")


def free_memory(device: str) -> int | None:
    import torch

    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        return torch.cuda.mem_get_info(index)[0]
    if device == "cpu":
        import psutil

        return psutil.virtual_memory().available
    return None


def attach_adapters(model: Any, models: list[ServedModel]) -> Any:
    """Wrap ``model`` in one PeftModel holding every adapter under its internal name (unmerged)."""
    adapters = [m for m in models if m.adapter]
    if not adapters:
        return model
    from peft import PeftModel

    first, rest = adapters[0], adapters[1:]
    try:
        model = PeftModel.from_pretrained(model, first.source, adapter_name=first.adapter)
        for served in rest:
            model.load_adapter(served.source, adapter_name=served.adapter)
    except (ValueError, RuntimeError, KeyError) as exc:
        raise ModelError(f"cannot attach the adapter: {exc}", where="key 'adapter_name_or_path'",
                         hint="check that every adapter was trained on this base model") from None
    return model
