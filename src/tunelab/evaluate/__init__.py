"""Evaluation of models and runs: predictions scored with BLEU / ROUGE / exact match, loss and
perplexity on a dataset, and benchmarks through lm-evaluation-harness; each recorded in the run's
``eval/`` folder (``run_evaluations`` is what ``tunelab eval`` and the board call)."""

from tunelab.evaluate.harness import BenchmarkSettings
from tunelab.evaluate.loading import evaluation_config
from tunelab.evaluate.perplexity import PerplexityResult, perplexity
from tunelab.evaluate.results import EvalRecord, format_table, read_record
from tunelab.evaluate.runner import EvalRequest, run_evaluations

__all__ = ["BenchmarkSettings", "EvalRecord", "EvalRequest", "PerplexityResult", "evaluation_config",
           "format_table", "perplexity", "read_record", "run_evaluations"]
