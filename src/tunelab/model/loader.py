"""Load a tokenizer and a model the way a recipe asks: path, dtype, attention, quantization.

The model is a causal LM, or for a reward model (``head="reward"``) the same network with a
one-output score head in place of the LM head (``AutoModelForSequenceClassification``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from tunelab.config.model import ModelArgs


def resolve_model_path(name: str | None) -> str:
    """A built-in tiny model name, a local folder, or a hub id -> what ``from_pretrained`` takes."""
    if not name:
        raise ModelError("no model given", where="key 'model_name_or_path'",
                         hint="set model_name_or_path to a local folder, a hub id, or tunelab/tiny-chat")
    if name.startswith("tunelab/"):
        from tunelab.testing import builtin_model_path

        return str(builtin_model_path(name))
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            raise ModelError(f"folder {path} has no config.json", where="key 'model_name_or_path'",
                             hint="point at the folder that holds the model's config.json and weights")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") != 1:
        raise ModelError(f"no such folder: {name}", where="key 'model_name_or_path'",
                         hint="check the path, or give a hub id like Qwen/Qwen2.5-0.5B-Instruct")
    return name


def _hub_error(name: str, exc: Exception) -> ModelError:
    from tunelab.hub import hub_offline

    access = _access_error(name, exc)
    if access is not None:
        return access
    offline = hub_offline()
    why = "HF_HUB_OFFLINE=1 is set" if offline else f"the hub could not be reached ({type(exc).__name__})"
    return ModelError(f"cannot load '{name}': {why} and it is not in the local cache",
                      where="key 'model_name_or_path'",
                      hint="download the model once where the hub is reachable "
                           "(hf download NAME --local-dir DIR) and pass the folder")


def _access_error(name: str, exc: BaseException) -> ModelError | None:
    """A gated or private hub model refused us: name its page and how to pass a token."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    chain, seen = exc, set()
    while chain is not None and id(chain) not in seen:
        seen.add(id(chain))
        if isinstance(chain, GatedRepoError) or "gated repo" in str(chain).lower():
            return ModelError(f"'{name}' is a gated model: its licence must be accepted before it "
                              "can be downloaded", where="key 'model_name_or_path'",
                              hint=f"open https://huggingface.co/{name}, accept the licence with your "
                                   "account, then set HF_TOKEN (or type the token in the board's "
                                   "top bar)")
        if isinstance(chain, RepositoryNotFoundError):
            return ModelError(f"'{name}' was not found on the hub, or it is private",
                              where="key 'model_name_or_path'",
                              hint=f"check the name at https://huggingface.co/{name}; for a private "
                                   "model set HF_TOKEN (or type the token in the board's top bar)")
        chain = chain.__cause__ or chain.__context__
    return None


def is_local(name: str) -> bool:
    return Path(name).exists()


# Any one of these lets AutoTokenizer build a tokenizer from a folder.
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json",
                    "vocab.txt", "spiece.model", "tiktoken.model")


def check_tokenizer_files(path: str) -> None:
    """ModelError when the local folder ``path`` holds no tokenizer file at all."""
    folder = Path(path)
    if folder.is_dir() and not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise ModelError(f"folder {folder} has no tokenizer (none of {', '.join(_TOKENIZER_FILES[:4])})",
                         where="key 'model_name_or_path'",
                         hint="copy the tokenizer files of the model it came from into the folder "
                         "(e.g. `hf download BASE_MODEL tokenizer.json tokenizer_config.json "
                         "--local-dir FOLDER`), or point at a folder that has them")


def check_safetensors(path: str) -> None:
    """ModelError naming a ``*.safetensors`` file in folder ``path`` that is cut short or not one.

    Reads only each file's header, which records where every tensor ends.
    """
    folder = Path(path)
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    for file in files:
        problem = _safetensors_problem(file)
        if problem:
            raise ModelError(f"{file.name} {problem}", where=f"model folder {folder}",
                             hint="the download or copy was cut short: fetch the file again "
                             "(e.g. `hf download MODEL --local-dir FOLDER`)")


def _safetensors_problem(file: Path) -> str | None:
    size = file.stat().st_size
    with file.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            return f"is truncated: {size} bytes, too short for a safetensors header"
        (header_len,) = struct.unpack("<Q", head)
        if 8 + header_len > size:
            return f"is truncated: {size} bytes, but its header alone is {header_len} bytes"
        try:
            header = json.loads(handle.read(header_len))
            end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
        except (ValueError, TypeError, KeyError, IndexError):
            return "is not a safetensors file (its header is not readable)"
    if 8 + header_len + end > size:
        return f"is truncated: {size:,} bytes on disk, its header describes {8 + header_len + end:,}"
    return None


def pick_dtype(requested: str, training: dict[str, Any] | None = None) -> "Any":
    """Resolve ``torch_dtype: auto`` against the device and the recipe's bf16/fp16 flags."""
    import torch

    training = training or {}
    if requested != "auto":
        return getattr(torch, requested)
    if training.get("bf16"):
        return torch.bfloat16
    if training.get("fp16"):
        return torch.float16
    if torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def pick_attention(flash_attn: str) -> str:
    """Map the recipe's ``flash_attn`` to a transformers ``attn_implementation``."""
    import torch

    has_fa2 = importlib.util.find_spec("flash_attn") is not None and torch.cuda.is_available()
    if flash_attn == "fa2":
        if not has_fa2:
            raise ModelError("FlashAttention 2 is not available here", where="key 'flash_attn'",
                             hint="install flash-attn on a CUDA machine, or use flash_attn: sdpa")
        return "flash_attention_2"
    if flash_attn in ("disabled", "eager"):
        return "eager"
    if flash_attn == "auto" and has_fa2:
        return "flash_attention_2"
    return "sdpa"


def pick_device(requested: str = "auto", key: str = "infer_device") -> str:
    """``auto`` -> cuda when a GPU is visible, else cpu; an explicit device must exist.

    ``key`` is the recipe key the request came from, named in the error.
    """
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"{requested} was asked for but no CUDA device is visible",
                          where=f"key '{key}'", hint=f"use {key}: cpu or auto")
    return requested


def load_tokenizer(model_args: "ModelArgs", padding_side: str | None = None) -> Any:
    """The model's tokenizer with a pad token (falls back to eos); ``padding_side`` overrides the
    tokenizer's own (generation pads on the left)."""
    from transformers import AutoTokenizer

    path = resolve_model_path(model_args.model_name_or_path)
    check_tokenizer_files(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            path, trust_remote_code=model_args.trust_remote_code, use_fast=model_args.use_fast_tokenizer,
            cache_dir=model_args.cache_dir, revision=model_args.model_revision)
    except (OSError, ValueError) as exc:
        if is_local(path):
            raise ModelError(f"cannot read the tokenizer in {path}: {exc}",
                             where="key 'model_name_or_path'") from None
        raise _hub_error(path, exc) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if padding_side is not None:
        tokenizer.padding_side = padding_side
    return tokenizer


def quantization_config(model_args: "ModelArgs", compute_dtype: Any) -> Any:
    """A bitsandbytes config for ``quantization_bit`` 4 or 8, or None."""
    if model_args.quantization_bit is None:
        return None
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelError("quantization needs bitsandbytes", where="key 'quantization_bit'",
                         hint="pip install 'tunelab[bnb]', or remove quantization_bit")
    from transformers import BitsAndBytesConfig

    if model_args.quantization_bit == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    # ZeRO-3 and FSDP shard floating-point tensors only: the packed 4-bit weights are then
    # stored in the compute dtype (same bytes, a dtype they can split), as QLoRA+FSDP requires.
    storage = {"bnb_4bit_quant_storage": compute_dtype} if sharded_loading() else {}
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=model_args.quantization_type,
                              bnb_4bit_use_double_quant=model_args.double_quantization,
                              bnb_4bit_compute_dtype=compute_dtype, **storage)


def sharded_loading() -> bool:
    """Whether the training arguments built for this process shard the model (DeepSpeed ZeRO-3,
    or FSDP): weights are then placed by the engine, not by a device map."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    return is_deepspeed_zero3_enabled() or os.environ.get("ACCELERATE_USE_FSDP") == "true"


HEADS = ("causal_lm", "reward")


def load_model(model_args: "ModelArgs", training: dict[str, Any] | None = None,
               device: str | None = None, head: str = "causal_lm") -> Any:
    """The base model as the recipe describes it (no adapters attached): a causal LM, or with
    ``head="reward"`` a sequence classifier with one output (a reward model's score head, new
    and randomly initialised when the folder holds a causal LM).

    ``device`` moves an unquantized model there (inference); training leaves placement to the
    Trainer, and quantized models are placed by bitsandbytes.
    """
    path = resolve_model_path(model_args.model_name_or_path)
    dtype = pick_dtype(model_args.torch_dtype, training)
    kwargs: dict[str, Any] = {
        "dtype": dtype,
        "attn_implementation": pick_attention(model_args.flash_attn),
        "trust_remote_code": model_args.trust_remote_code,
        "cache_dir": model_args.cache_dir,
        "revision": model_args.model_revision,
    }
    check_safetensors(path)
    quant = quantization_config(model_args, dtype)
    if quant is not None:
        kwargs["quantization_config"] = quant
        if not sharded_loading():
            kwargs["device_map"] = _quantized_device_map()
    try:
        model = _from_pretrained(path, head, kwargs)
    except OSError as exc:
        if is_local(path):
            raise ModelError(f"cannot load the model in {path}: {exc}",
                             where="key 'model_name_or_path'") from None
        raise _hub_error(path, exc) from None
    except ValueError as exc:
        raise ModelError(str(exc), where=f"model {path}") from None
    if device is not None and quant is None:
        model = model.to(device)
    return model


def _from_pretrained(path: str, head: str, kwargs: dict[str, Any]) -> Any:
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    if head == "causal_lm":
        return AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if head != "reward":
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    from trl.trainer.reward_trainer import suppress_seqcls_warning

    # A causal LM's lm_head is left out and the score head is new: expected, so not reported
    # (TRL's filter of transformers' load report, as RewardTrainer itself loads models).
    with suppress_seqcls_warning():
        return AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, **kwargs)


def _quantized_device_map() -> Any:
    if pick_device() == "cuda":
        return {"": int(os.environ.get("LOCAL_RANK", "0"))}
    return {"": "cpu"}
