"""The shape of a model, read from its config alone: exact parameter counts and linear layers.

The model is instantiated on the ``meta`` device, so no weights are read or allocated: a 70B
config is counted in well under a second on a laptop. Everything the memory and time estimates
need is kept in a small frozen :class:`ModelShape`, cached by the config's JSON text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunelab.errors import ModelError
from tunelab.model.adapters import layer_index

_CACHE: dict[str, "ModelShape"] = {}
_CACHE_SIZE = 16


@dataclass(frozen=True)
class LinearInfo:
    """One ``nn.Linear`` of the model (the output head excluded)."""

    name: str
    short: str
    in_features: int
    out_features: int
    bias: bool
    layer: int | None


@dataclass(frozen=True)
class ModelShape:
    """Exact parameter counts and the dimensions that drive activation memory and FLOPs."""

    model_type: str
    total_params: int
    embedding_params: int
    head_params: int
    tied_embeddings: bool
    linears: tuple[LinearInfo, ...]
    params: tuple[tuple[str, int], ...]
    module_sizes: tuple[tuple[str, int], ...]
    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    largest_layer_params: int

    @property
    def q_dim(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def linear_weight_params(self) -> int:
        """Parameters that bitsandbytes would quantize: every linear weight but the head."""
        return sum(li.in_features * li.out_features for li in self.linears)

    def module_size(self, short: str) -> int:
        return dict(self.module_sizes).get(short, 0)


def load_model_config(name: str | None, *, trust_remote_code: bool = False,
                      cache_dir: str | None = None, revision: str = "main") -> Any:
    """A transformers config from a folder, a config.json file, a built-in name, or a hub id."""
    from transformers import AutoConfig

    where = "key 'model_name_or_path'"
    if not name:
        raise ModelError("no model given", where=where,
                         hint="set model_name_or_path to a local folder (or its config.json) or a hub id")
    folder = _builtin_folder(name)
    path = folder or Path(name).expanduser()
    if path.is_file() or (path.is_dir() and (path / "config.json").is_file()):
        try:
            return AutoConfig.from_pretrained(str(path), trust_remote_code=trust_remote_code)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot read the model config in {path}: {exc}", where=where) from None
    if path.is_dir():
        raise ModelError(f"folder {path} has no config.json", where=where,
                         hint="point at the folder that holds the model's config.json")
    if name.startswith((".", "/", "~")) or name.count("/") != 1:
        raise ModelError(f"no such folder or file: {name}", where=where,
                         hint="check the path, or give a hub id like Qwen/Qwen2.5-0.5B")
    return _hub_config(name, trust_remote_code, cache_dir, revision)


def _builtin_folder(name: str) -> Path | None:
    # Imported lazily: tunelab.testing builds tiny models and pulls in tokenizers.
    try:
        from tunelab import testing
    except ImportError:
        testing = None
    is_builtin = getattr(testing, "is_builtin", None)
    if is_builtin is None:
        if name.startswith("tunelab/"):
            raise ModelError(f"built-in model {name} is not available in this install",
                             where="key 'model_name_or_path'")
        return None
    if not is_builtin(name):
        return None
    return Path(testing.builtin_model_path(name))


def _hub_config(name: str, trust_remote_code: bool, cache_dir: str | None, revision: str) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code,
                                          cache_dir=cache_dir, revision=revision)
    except Exception as exc:  # offline, unknown repo, gated repo: all mean "no config here"
        raise ModelError(f"cannot fetch the config of '{name}' from the hub "
                         f"({type(exc).__name__}) and it is not in the local cache",
                         where="key 'model_name_or_path'",
                         hint="download its config.json where the hub is reachable, put it in a "
                              "folder, and pass that folder (the estimate needs no weights)") from None


def shape_of(config: Any, *, trust_remote_code: bool = False) -> ModelShape:
    """The :class:`ModelShape` of a config, counted once per distinct config."""
    key = config.to_json_string(use_diff=False)
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = shape_of_model(_meta_model(config, trust_remote_code), config)
    return _CACHE[key]


def _meta_model(config: Any, trust_remote_code: bool) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    try:
        with torch.device("meta"):
            return AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"cannot build a causal LM from this config: {exc}",
                         where="key 'model_name_or_path'",
                         hint="the estimate supports models that AutoModelForCausalLM can build") from None


def shape_of_model(model: Any, config: Any) -> ModelShape:
    """Count a (meta or real) model's parameters and linear layers."""
    params = tuple((name, p.numel()) for name, p in model.named_parameters())
    embed = model.get_input_embeddings()
    head = model.get_output_embeddings()
    embed_weight = embed.weight if embed is not None else None
    head_weight = head.weight if head is not None else None
    tied = head_weight is not None and head_weight is embed_weight
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = text.num_attention_heads
    return ModelShape(
        model_type=getattr(config, "model_type", "unknown"),
        total_params=sum(n for _, n in params),
        embedding_params=embed_weight.numel() if embed_weight is not None else 0,
        head_params=0 if tied or head_weight is None else head_weight.numel(),
        tied_embeddings=tied,
        linears=_linears(model, head),
        params=params,
        module_sizes=_module_sizes(model),
        num_layers=text.num_hidden_layers,
        hidden_size=text.hidden_size,
        intermediate_size=getattr(text, "intermediate_size", None) or 4 * text.hidden_size,
        num_heads=heads,
        num_kv_heads=getattr(text, "num_key_value_heads", None) or heads,
        head_dim=getattr(text, "head_dim", None) or text.hidden_size // heads,
        vocab_size=text.vocab_size,
        largest_layer_params=_largest_layer(params),
    )


def _largest_layer(params: tuple[tuple[str, int], ...]) -> int:
    sizes: dict[int, int] = {}
    for name, count in params:
        index = layer_index(name)
        if index is not None:
            sizes[index] = sizes.get(index, 0) + count
    return max(sizes.values(), default=0)


def _linears(model: Any, head: Any) -> tuple[LinearInfo, ...]:
    import torch

    found = []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or module is head or "lm_head" in name:
            continue
        found.append(LinearInfo(name, name.split(".")[-1], module.in_features, module.out_features,
                                module.bias is not None, layer_index(name)))
    return tuple(found)


def _module_sizes(model: Any) -> tuple[tuple[str, int], ...]:
    """Short module name -> parameters under every module of that name (for modules_to_save)."""
    sizes: dict[str, int] = {}
    for name, module in model.named_modules():
        if not name:
            continue
        short = name.split(".")[-1]
        if short.isdigit():
            continue
        sizes[short] = sizes.get(short, 0) + sum(p.numel() for p in module.parameters(recurse=True))
    return tuple(sorted(sizes.items()))


def count_text(n: int) -> str:
    """A parameter count for reading: ``1.23B``, ``45.60M``, ``7.00K``."""
    for unit, size in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)
