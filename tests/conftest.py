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
