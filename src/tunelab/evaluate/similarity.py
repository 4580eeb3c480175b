"""How close generated answers are to the reference answers: BLEU-4, ROUGE-1/2/L, exact match.

Segmentation follows LLaMA-Factory's predict metrics, so the figures are comparable with what our
users already report: ``jieba`` cuts a text into words (Chinese words; for English, the words and
punctuation between spaces), ROUGE F-scores come from ``rouge-chinese`` on those words, and every
score is the mean of per-sample scores, in percent. BLEU-4 is NLTK's sentence BLEU with smoothing
method 3, on the same words (``bleu-4``) and, as LLaMA-Factory computes its ``predict_bleu-4``,
on characters (``bleu-4-char``). The libraries are the optional extra ``metrics``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from tunelab.errors import ConfigError

ROUGE_KEYS = ("rouge-1", "rouge-2", "rouge-l")


@dataclass
class Scored:
    """One answer: the reference, the model's text and how its generation ended."""

    label: str
    prediction: str
    finish_reason: str | None = None
    tokens: int = 0


def _libraries() -> tuple[Any, Any, Any, Any]:
    try:
        import jieba
        from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
        from rouge_chinese import Rouge
    except ImportError as exc:
        raise ConfigError(f"the text-similarity metrics need {exc.name}, which is not installed",
                          where="--predict", hint="pip install 'tunelab[metrics]' (jieba, nltk, "
                          "rouge-chinese)") from None
    jieba.setLogLevel(logging.WARNING)  # its dictionary-loading chatter is not for our users
    return jieba, Rouge, sentence_bleu, SmoothingFunction().method3


def words(text: str) -> list[str]:
    """``text`` cut by jieba, without the whitespace pieces (the units ROUGE and BLEU count)."""
    jieba = _libraries()[0]
    return [piece for piece in jieba.cut(text) if piece.strip()]


def sample_scores(label: str, prediction: str) -> dict[str, float]:
    """BLEU-4 (words and characters) and ROUGE-1/2/L F of one answer, in percent."""
    _, rouge_class, bleu, smoothing = _libraries()
    hyp, ref = words(prediction), words(label)
    scores = dict.fromkeys(ROUGE_KEYS, 0.0)
    if hyp and ref:  # rouge-chinese refuses an empty side; an empty answer scores 0
        found = rouge_class().get_scores(" ".join(hyp), " ".join(ref))[0]
        scores = {key: 100 * found[key]["f"] for key in ROUGE_KEYS}
    scores["bleu-4"] = 100 * bleu([ref], hyp, smoothing_function=smoothing) if hyp and ref else 0.0
    scores["bleu-4-char"] = (100 * bleu([list(label)], list(prediction), smoothing_function=smoothing)
                             if label and prediction else 0.0)
    return scores


def similarity_metrics(answers: list[Scored]) -> dict[str, float]:
    """Means over ``answers``: bleu-4, bleu-4-char, rouge-1/2/l (percent), exact_match, the
    answers' mean length in tokens, and the shares of empty and of truncated answers (0..1)."""
    if not answers:
        return {}
    per_sample = [sample_scores(a.label, a.prediction) for a in answers]
    n = len(answers)
    metrics = {key: sum(s[key] for s in per_sample) / n for key in per_sample[0]}
    metrics["exact_match"] = sum(a.prediction.strip() == a.label.strip() for a in answers) / n
    metrics["avg_tokens"] = sum(a.tokens for a in answers) / n
    metrics["empty_share"] = sum(not a.prediction.strip() for a in answers) / n
    metrics["truncated_share"] = sum(a.finish_reason == "length" for a in answers) / n
    return metrics
