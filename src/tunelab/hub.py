"""The one place TuneLab asks whether the Hugging Face Hub may be used."""

from __future__ import annotations

import os


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` is set to a true value, read now and parsed the way
    huggingface_hub parses it (1, ON, YES, TRUE in any case), so our messages agree with it."""
    from huggingface_hub.constants import ENV_VARS_TRUE_VALUES

    return os.environ.get("HF_HUB_OFFLINE", "").upper() in ENV_VARS_TRUE_VALUES
