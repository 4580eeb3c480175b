"""Typed configuration: one dataclass per concern, loaded from YAML + key=value overrides."""

from tunelab.config.schema import SECTIONS, Config, build_config, describe_keys, load_config

__all__ = ["SECTIONS", "Config", "build_config", "describe_keys", "load_config"]
