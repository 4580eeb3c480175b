"""Shared pytest fixtures for the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach a model hub: tiny models are built locally by tunelab.testing.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_chat_path(tmp_path_factory) -> Path:
    """A tiny Llama model folder with the ChatML template, built once per test session."""
    from tunelab.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-chat"), variant="chat")


@pytest.fixture(scope="session")
def tiny_think_path(tmp_path_factory) -> Path:
    """Like ``tiny_chat_path`` but with the <think> reasoning template (``enable_thinking``)."""
    from tunelab.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-think"), variant="think")


@pytest.fixture(scope="session", autouse=True)
def tunelab_home(tmp_path_factory) -> Path:
    """One TUNELAB_HOME (built-in model builds, tokenised-data cache) per test session, so tests
    never read or write the user's ~/.cache/tunelab; subprocesses inherit it."""
    home = tmp_path_factory.mktemp("tunelab-home")
    os.environ["TUNELAB_HOME"] = str(home)
    return home


@pytest.fixture
def tunelab_env(tunelab_home) -> dict[str, str]:
    """Environment for `tunelab` subprocesses: the session's TUNELAB_HOME, no hub, no telemetry."""
    return {**os.environ, "TUNELAB_HOME": str(tunelab_home), "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
