"""The sharding engines a recipe may ask for: DeepSpeed ZeRO (``deepspeed``) and PyTorch FSDP2
(``fsdp``, ``fsdp_config``). Their settings are read here once, for validation, for the memory
estimate and for the TrainingArguments that training builds, so all three agree.

Free of torch: the JSON files are read with the standard library.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.errors import ConfigError

if TYPE_CHECKING:
    from tunelab.config.schema import Config

ZERO_STAGES = (0, 1, 2, 3)
FSDP_WORDS = ("full_shard", "shard_grad_op", "offload", "auto_wrap")
# FSDP1's strategies: FSDP2 expresses only full_shard and shard_grad_op.
FSDP1_ONLY = ("hybrid_shard", "hybrid_shard_zero2", "no_shard")
# transformers' fsdp_config keys (TrainingArguments._process_fsdp_args), without the optional
# "fsdp_" prefix it strips.
FSDP_CONFIG_KEYS = ("version", "min_num_params", "transformer_layer_cls_to_wrap", "cpu_offload",
                    "auto_wrap_policy", "cpu_ram_efficient_loading", "state_dict_type",
                    "activation_checkpointing", "reshard_after_forward", "xla", "xla_fsdp_v2",
                    "xla_fsdp_grad_ckpt", "xla_fsdp_settings")
WRAP_POLICIES = ("TRANSFORMER_BASED_WRAP", "SIZE_BASED_WRAP", "NO_WRAP")
STATE_DICT_TYPES = ("FULL_STATE_DICT", "SHARDED_STATE_DICT")
# The names LLaMA-Factory's recipes use for its own example files.
_LF_NAMES = {"ds_z0_config.json": "ds_z0.json", "ds_z2_config.json": "ds_z2.json",
             "ds_z2_offload_config.json": "ds_z2_offload.json", "ds_z3_config.json": "ds_z3.json",
             "ds_z3_offload_config.json": "ds_z3_offload.json"}


@dataclass(frozen=True)
class Sharding:
    """What a recipe shards and how: ``engine`` is "deepspeed", "fsdp" or None; ``stage`` is the
    ZeRO stage or its FSDP equivalent (full_shard = 3, shard_grad_op = 2); None when DeepSpeed
    picks it ("auto")."""

    engine: str | None = None
    stage: int | None = 0
    offload_optimizer: bool = False
    offload_params: bool = False
    fsdp_config: dict | None = None


def read_json_setting(key: str, value: Any) -> dict:
    """A mapping from a recipe value that is a mapping, a JSON file path, or inline JSON text."""
    if isinstance(value, dict):
        return value
    text = str(value).strip()
    if text.startswith("{"):
        where = f"key '{key}'"
    else:
        path = Path(text).expanduser()
        if not path.is_file():
            raise _missing_file(key, text)
        where, text = str(path), path.read_text(encoding="utf-8")
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON ({exc.msg}, line {exc.lineno})", where=where, key=key,
                          hint="fix the JSON syntax (a trailing comma or a missing quote is common)") from None
    if not isinstance(loaded, dict):
        raise ConfigError("a JSON object ({...}) is needed", where=where, key=key)
    return loaded


def _missing_file(key: str, text: str) -> ConfigError:
    ours = _LF_NAMES.get(Path(text).name)
    hint = (f"TuneLab ships the same config as examples/deepspeed/{ours}" if ours else
            "give the path of a JSON file (TuneLab ships examples/deepspeed/ds_z*.json) or a mapping")
    return ConfigError(f"config file {text} not found", where=f"key '{key}'", key=key, value=text,
                       allowed="a JSON file or a mapping", hint=hint)


def _zero(config: dict) -> Sharding:
    zero = config.get("zero_optimization") or {}
    if not isinstance(zero, dict):
        raise ConfigError("zero_optimization must be a mapping", where="key 'deepspeed'", key="deepspeed")
    stage = zero.get("stage", 0)
    if stage != "auto" and (isinstance(stage, bool) or stage not in ZERO_STAGES):
        raise ConfigError(f"unknown ZeRO stage {stage!r}; allowed: 0, 1, 2, 3 or \"auto\"", where="key 'deepspeed'", key="deepspeed",
                          value=stage, allowed="zero_optimization.stage 0, 1, 2, 3 or \"auto\"")
    return Sharding("deepspeed", None if stage == "auto" else stage,
                    _offloaded(zero.get("offload_optimizer")), _offloaded(zero.get("offload_param")))


def _offloaded(section: Any) -> bool:
    return isinstance(section, dict) and section.get("device") in ("cpu", "nvme")


def fsdp_words(value: Any) -> list[str]:
    """The words of ``fsdp: full_shard auto_wrap`` (true = full_shard), each checked."""
    if value is True:
        return ["full_shard"]
    words = [w.lower() for w in str(value).replace(",", " ").split()]
    for word in words:
        if word in FSDP1_ONLY:
            raise ConfigError(f"'{word}' is an FSDP1 strategy; TuneLab runs FSDP2", where="key 'fsdp'",
                              key="fsdp", value=value, allowed=", ".join(FSDP_WORDS),
                              hint="use full_shard (or shard_grad_op to keep weights whole after forward)")
        if word not in FSDP_WORDS:
            raise ConfigError(f"'{word}' is not an FSDP option; allowed: words among "
                              + ", ".join(FSDP_WORDS) + " (or true)", where="key 'fsdp'", key="fsdp",
                              value=value, allowed="words among " + ", ".join(FSDP_WORDS))
    return words


def _check_fsdp_config(config: dict) -> dict:
    config = {k[5:] if k.startswith("fsdp_") else k: v for k, v in config.items()}
    unknown = sorted(set(config) - set(FSDP_CONFIG_KEYS))
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], FSDP_CONFIG_KEYS, n=1)
        raise ConfigError(f"unknown fsdp_config key '{unknown[0]}'", where="key 'fsdp_config'",
                          key="fsdp_config", allowed=", ".join(FSDP_CONFIG_KEYS),
                          hint=f"did you mean '{close[0]}'?" if close else
                          "known keys: " + ", ".join(FSDP_CONFIG_KEYS))
    rules = {"version": ((2, "2"), "2 (FSDP1 is deprecated in transformers; TuneLab runs FSDP2)"),
             "auto_wrap_policy": (WRAP_POLICIES, ", ".join(WRAP_POLICIES)),
             "state_dict_type": (STATE_DICT_TYPES, ", ".join(STATE_DICT_TYPES))}
    for name, (allowed, text) in rules.items():
        if name in config and config[name] not in allowed:
            raise ConfigError(f"fsdp_config {name}={config[name]!r} is not supported; allowed: {text}",
                              where="key 'fsdp_config'", key="fsdp_config", allowed=text)
    return config


def _fsdp(cfg_training: dict) -> Sharding:
    words = fsdp_words(cfg_training["fsdp"]) if cfg_training.get("fsdp") not in (None, False) else []
    given = cfg_training.get("fsdp_config")
    config = _check_fsdp_config(read_json_setting("fsdp_config", given)) if given is not None else {}
    offload = "offload" in words or str(config.get("cpu_offload", "false")).lower() == "true"
    reshard = config.get("reshard_after_forward", "shard_grad_op" not in words)
    stage = 3 if str(reshard).lower() == "true" else 2
    return Sharding("fsdp", stage, offload, offload, fsdp_plugin_config(words, config))


def fsdp_plugin_config(words: list[str], config: dict) -> dict:
    """transformers' fsdp_config for TuneLab's FSDP: version 2, CPU-RAM-efficient loading and a
    full state dict on save, unless the recipe's fsdp_config says otherwise; the ``fsdp`` words
    become the settings they stand for (transformers' string form is deprecated)."""
    resolved = {"version": 2, "cpu_ram_efficient_loading": True, "state_dict_type": "FULL_STATE_DICT"}
    if "shard_grad_op" in words:
        resolved["reshard_after_forward"] = False
    if "offload" in words:
        resolved["cpu_offload"] = True
    return {**resolved, **config}


def sharding(cfg: "Config") -> Sharding:
    """The recipe's sharding engine and settings; ConfigError when a file or value is wrong."""
    training = cfg.training
    wants_fsdp = training.get("fsdp") not in (None, False) or training.get("fsdp_config") is not None
    if training.get("deepspeed") and wants_fsdp:
        raise ConfigError("conflicts with 'fsdp': DeepSpeed and FSDP both shard the model; a run "
                          "uses one", where="key 'deepspeed'", key="deepspeed",
                          hint="keep either deepspeed or fsdp/fsdp_config")
    if training.get("deepspeed"):
        return _zero(read_json_setting("deepspeed", training["deepspeed"]))
    if wants_fsdp:
        return _fsdp(training)
    return Sharding()


def sharding_problems(cfg: "Config") -> list[ConfigError]:
    """Every problem of the sharding keys, and of sharding combined with a quantized base."""
    try:
        found = sharding(cfg)
    except ConfigError as exc:
        return list(exc.problems)
    bits = cfg.model.quantization_bit
    if found.engine and bits == 8 and (found.engine == "fsdp" or found.stage in (3, None)):
        what = "FSDP" if found.engine == "fsdp" else "ZeRO-3"
        return [ConfigError(f"conflicts with 'quantization_bit': {what} cannot shard an 8-bit "
                            "bitsandbytes base", where=f"key '{found.engine}'", key=found.engine,
                            hint="use quantization_bit: 4 (stored in the compute dtype, so it can "
                                 "be sharded), ZeRO-2, or no quantization")]
    return []
