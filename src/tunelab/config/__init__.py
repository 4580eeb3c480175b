"""Typed configuration: one dataclass per concern, loaded from YAML + key=value overrides."""

from tunelab.config.checks import check_config
from tunelab.config.schema import Config, build_config, load_config
from tunelab.config.spec import SECTIONS, KeySpec, describe_keys, spec_for

__all__ = ["SECTIONS", "Config", "KeySpec", "build_config", "check_config", "describe_keys",
           "load_config", "spec_for"]
