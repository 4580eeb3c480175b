"""Prediction metrics against values counted by hand (n-grams written out in the comments)."""

import math

import pytest

from tunelab.evaluate.similarity import Scored, sample_scores, similarity_metrics, words


def test_chinese_pair_scores_equal_the_hand_count():
    label, prediction = "我爱北京", "我爱北京天安门"
    # jieba: 我 / 爱 / 北京 (label), 我 / 爱 / 北京 / 天安门 (prediction)
    assert words(label) == ["我", "爱", "北京"]
    assert words(prediction) == ["我", "爱", "北京", "天安门"]
    scores = sample_scores(label, prediction)
    # ROUGE-1: 3 shared words; P = 3/4, R = 3/3, F = 2PR/(P+R) = 6/7.
    assert scores["rouge-1"] == pytest.approx(100 * 6 / 7, rel=1e-6)
    # ROUGE-2: bigrams 我爱 爱北京 | 我爱 爱北京 北京天安门: 2 shared; P = 2/3, R = 2/2, F = 4/5.
    assert scores["rouge-2"] == pytest.approx(80.0, rel=1e-6)
    # ROUGE-L: the longest common subsequence is 我 爱 北京 (3): as ROUGE-1, 6/7.
    assert scores["rouge-l"] == pytest.approx(100 * 6 / 7, rel=1e-6)
    # BLEU-4 on words: precisions 3/4, 2/3, 1/2 (我爱北京 of 2 trigrams), 0/1 for 4-grams, which
    # smoothing method 3 replaces by 1/(2*1); the prediction is longer, so no brevity penalty.
    assert scores["bleu-4"] == pytest.approx(100 * (3 / 4 * 2 / 3 * 1 / 2 * 1 / 2) ** 0.25, rel=1e-6)
    # BLEU-4 on characters (LLaMA-Factory's): 4/7, 3/6, 2/5, 1/4.
    assert scores["bleu-4-char"] == pytest.approx(100 * (4 / 7 * 3 / 6 * 2 / 5 * 1 / 4) ** 0.25, rel=1e-6)


def test_english_is_scored_on_words_and_punctuation():
    label = "I am Tuney, an assistant built by TuneLab."
    prediction = "I am Tuney, an AI assistant."
    # I am Tuney , an assistant built by TuneLab . (10) vs I am Tuney , an AI assistant . (8)
    scores = sample_scores(label, prediction)
    p, r = 7 / 8, 7 / 10  # shared: I am Tuney , an assistant .
    assert scores["rouge-1"] == pytest.approx(100 * 2 * p * r / (p + r), rel=1e-6)
    # bigrams shared: "I am", "am Tuney", "Tuney ,", ", an" (4 of 7 and of 9)
    p2, r2 = 4 / 7, 4 / 9
    assert scores["rouge-2"] == pytest.approx(100 * 2 * p2 * r2 / (p2 + r2), rel=1e-6)


def test_aggregates_count_exact_empty_and_truncated_answers():
    answers = [Scored("我爱北京", "我爱北京天安门", "stop", 4),
               Scored("Yes.", " Yes. ", "stop", 2),
               Scored("No.", "", "length", 8)]
    metrics = similarity_metrics(answers)
    assert metrics["exact_match"] == pytest.approx(1 / 3)
    assert metrics["empty_share"] == pytest.approx(1 / 3)
    assert metrics["truncated_share"] == pytest.approx(1 / 3)
    assert metrics["avg_tokens"] == pytest.approx(14 / 3)
    # Means of per-answer scores: 6/7, 1 (identical words) and 0 (empty answer).
    assert metrics["rouge-1"] == pytest.approx(100 * (6 / 7 + 1 + 0) / 3, rel=1e-6)
    assert not any(math.isnan(v) for v in metrics.values())
