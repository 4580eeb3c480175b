"""What an export starts from: a base plus adapters, or a run that saved full weights.

Everything here only reads small JSON files, so a wrong recipe fails in a second, before any
weights are loaded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.errors import ConfigError, ModelError
from tunelab.model import adapter_base_model, check_adapter_dir, resolve_model_path

if TYPE_CHECKING:
    from tunelab.config.schema import Config

# Name suffixes that hub uploaders give pre-quantized copies of a model (-bnb-4bit, -GPTQ-Int4).
_QUANTIZED_SUFFIX = re.compile(r"(?:[-_.](?:unsloth|bnb|gptq|awq|int4|int8|nf4|4bit|8bit))+$",
                               re.IGNORECASE)


@dataclass
class ExportSource:
    """The weights an export merges, and what the user should be told about them."""

    base_name: str
    base_path: str
    adapters: list[str] = field(default_factory=list)
    trained_bits: int | None = None
    tokenizer_path: str = ""
    notes: list[str] = field(default_factory=list)
    trained_tokenizer: bool = False
    """Whether ``tokenizer_path`` holds the tokenizer (and chat template) a run trained with."""
    reward: bool = False
    """Whether the export is a reward model (stage rm): a sequence classifier with one output."""

    @property
    def is_full(self) -> bool:
        """True when the weights themselves are the trained model (freeze/full runs)."""
        return not self.adapters


def resolve_source(cfg: "Config") -> ExportSource:
    """The base, adapters and tokenizer folder the recipe asks to export (reads JSON only)."""
    from tunelab.infer.score import is_reward_model_dir

    model, adapters = cfg.model.model_name_or_path, list(cfg.model.adapter_name_or_path or [])
    if model and _is_adapter_folder(model):
        # `--model saves/run` where the run holds an adapter: the adapter's base is the base.
        model, adapters = None, [model, *adapters]
    for path in adapters:
        check_adapter_dir(path)
    if not model and not adapters:
        raise ConfigError("nothing to export", where="key 'model_name_or_path'",
                          hint="set model_name_or_path (a base or a full run) and/or "
                               "adapter_name_or_path (LoRA adapters to merge)")
    base_name = model or _recorded_base(adapters[0])
    base_path = _resolve_base(base_name, adapters)
    # One reward model among the inputs (an rm run, or a full rm model as the base) makes the
    # whole export one: the base is loaded with its score head and every adapter merged into it.
    source = ExportSource(base_name=base_name, base_path=base_path, adapters=adapters,
                          reward=any(map(is_reward_model_dir, [base_path, *adapters])))
    source.trained_bits = _trained_bits(adapters)
    source.tokenizer_path = _tokenizer_folder(adapters, base_path)
    source.trained_tokenizer = (source.tokenizer_path != base_path
                                or bool(_run_manifest(source.tokenizer_path)))
    _note_quantization(source, cfg.model.quantization_bit)
    return source


def _is_adapter_folder(path: str) -> bool:
    folder = Path(path)
    return (folder / "adapter_config.json").is_file() and not (folder / "config.json").is_file()


def _recorded_base(adapter: str) -> str:
    base = adapter_base_model(adapter)
    if not base:
        raise ModelError(f"adapter {adapter} does not record its base model",
                         where=f"{adapter}/adapter_config.json",
                         hint="set model_name_or_path to the model the adapter was trained on")
    return base


def _resolve_base(base_name: str, adapters: list[str]) -> str:
    where = "key 'model_name_or_path'" if not adapters else f"base model of {adapters[0]}"
    try:
        path = resolve_model_path(base_name)
    except ModelError as exc:
        raise ModelError(exc.problem, where=where, hint=exc.hint) from None
    check_not_prequantized(base_name, path)
    return path


def read_model_config(path: str) -> dict[str, Any]:
    """config.json of a local model folder ({} for a hub id that is not on disk)."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return {}
    return json.loads(config.read_text(encoding="utf-8"))


def check_not_prequantized(name: str, path: str, config: dict[str, Any] | None = None) -> None:
    """Fail, naming the original weights, when the base is a pre-quantized checkpoint.

    Merging into 4/8-bit weights would round the adapter's update away, so TuneLab merges onto
    the full-precision model, which a pre-quantized upload does not contain.
    """
    config = read_model_config(path) if config is None else config
    quant = config.get("quantization_config")
    # Without a config on disk (a hub id not downloaded yet) the name is all there is to go on.
    named_quantized = not config and _QUANTIZED_SUFFIX.search(name.rstrip("/"))
    if not quant and not named_quantized:
        return
    method = (quant or {}).get("quant_method", "a quantization method")
    original = original_weights_name(name, config)
    raise ModelError(
        f"the base '{name}' is a pre-quantized checkpoint ({method}); an adapter is merged onto "
        f"full-precision weights, which this checkpoint does not contain",
        where="key 'model_name_or_path'",
        hint=f"download the original unquantized model ({original}) and pass it as "
             f"model_name_or_path (--model); the adapter works on it unchanged")


def original_weights_name(name: str, config: dict[str, Any]) -> str:
    """Best guess at the unquantized model a pre-quantized one was made from."""
    recorded = str(config.get("_name_or_path") or "")
    if recorded and recorded != name and not _QUANTIZED_SUFFIX.search(recorded):
        return recorded
    stripped = _QUANTIZED_SUFFIX.sub("", name.rstrip("/"))
    if stripped != name.rstrip("/"):
        return stripped
    return f"the full-precision version of {name}"


def _run_manifest(adapter: str) -> dict[str, Any]:
    """The TuneLab manifest of the run an adapter folder (or its checkpoint-N) belongs to."""
    folder = Path(adapter)
    for candidate in (folder, folder.parent):
        manifest = candidate / "manifest.json"
        if manifest.is_file():
            try:
                return json.loads(manifest.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                return {}
    return {}


def _trained_bits(adapters: list[str]) -> int | None:
    """The k-bit quantization the adapters were trained on (QLoRA), from their run manifests."""
    bits = None
    for adapter in adapters:
        resolved = _run_manifest(adapter).get("config_resolved") or {}
        bits = resolved.get("quantization_bit") or bits
    return bits


def _note_quantization(source: ExportSource, recipe_bits: int | None) -> None:
    bits = source.trained_bits or recipe_bits
    if bits and source.adapters:
        source.notes.append(
            f"the adapter was trained on a {bits}-bit base (QLoRA): merging it onto the "
            f"full-precision base {source.base_name}, loaded without quantization")
    elif recipe_bits:
        source.notes.append(f"quantization_bit={recipe_bits} is ignored: exports are written "
                            "from full-precision weights")


def _tokenizer_folder(adapters: list[str], base_path: str) -> str:
    """Where the tokenizer the model was trained with lives (the run saves it, with its template)."""
    if adapters:
        last = Path(adapters[-1])
        for folder in (last, last.parent):
            if (folder / "tokenizer_config.json").is_file():
                return str(folder)
    return base_path
