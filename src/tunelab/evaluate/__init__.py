"""Evaluation of models and runs: loss / perplexity on a dataset (more metrics join here)."""

from tunelab.evaluate.perplexity import PerplexityResult, evaluation_config, perplexity

__all__ = ["PerplexityResult", "evaluation_config", "perplexity"]
