"""OpenAI-compatible HTTP API over a ChatEngine (``tunelab api``)."""

from tunelab.serve.app import create_app

__all__ = ["create_app"]
