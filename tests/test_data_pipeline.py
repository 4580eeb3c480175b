"""prepare_datasets end to end: stats, splits, packing and the fingerprinted cache."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from tunelab.config import build_config
from tunelab.data.pipeline import prepare_datasets
from tunelab.errors import DataError

ROWS = [{"instruction": f"Question {i}?", "input": "", "output": f"Answer number {i}. " * (1 + i % 3)}
        for i in range(12)]
BAD = [{"instruction": "no answer", "output": ""}]


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNELAB_HOME", str(tmp_path / "home"))
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "dataset_info.json").write_text(json.dumps({
        "qa": {"file_name": "qa.json"},
        "corpus": {"file_name": "corpus.txt"},
        "chat": {"file_name": "chat.jsonl", "formatting": "sharegpt"}}))
    (folder / "qa.json").write_text(json.dumps(ROWS + BAD))
    (folder / "corpus.txt").write_text("\n".join(f"line {i} of plain text for pre-training" for i in range(20)))
    chat = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}
    (folder / "chat.jsonl").write_text(json.dumps(chat) + "\n{broken\n")
    return folder


@pytest.fixture
def tok(tiny_chat_path):
    return AutoTokenizer.from_pretrained(tiny_chat_path)


def cfg(data_dir, **keys):
    return build_config({"dataset": "qa", "dataset_dir": str(data_dir), "cutoff_len": 64, **keys})


def test_sft_stats_packing_and_reports(data_dir, tok):
    prepared = prepare_datasets(cfg(data_dir, packing=True), tok, "sft")
    s = prepared.stats
    assert (s["rows_read"], s["rows_invalid"], s["samples"], s["cache"]) == (13, 1, 12, "miss")
    assert s["packed"] and s["packed_rows"] == len(prepared.train) < 12
    assert set(prepared.train.column_names) == {"input_ids", "labels", "position_ids"}
    assert 0 < s["trainable_tokens"] < s["total_tokens"] == sum(len(r) for r in prepared.train["input_ids"])
    assert "qa.json:13: empty assistant turn" in prepared.reports[0].format()
    batch = prepared.collator(tok.pad_token_id, flatten=True)([prepared.train[0], prepared.train[1]])
    assert batch["input_ids"].shape[0] == 1 and "attention_mask" not in batch


def test_sft_default_is_unpacked_with_padding_free_batches(data_dir, tok):
    prepared = prepare_datasets(cfg(data_dir), tok, "sft")
    assert not prepared.stats["packed"] and len(prepared.train) == prepared.stats["samples"] == 12
    rows = [prepared.train[i] for i in range(3)]
    free = prepared.collator(tok.pad_token_id, padding_free=True)(rows)
    assert free["input_ids"].shape == (1, sum(len(r["input_ids"]) for r in rows))
    assert free["position_ids"][0].tolist() == [p for r in rows for p in range(len(r["input_ids"]))]
    padded = prepared.collator(tok.pad_token_id)(rows)
    assert padded["input_ids"].shape[0] == 3 and "attention_mask" in padded


def test_cache_hit_and_misses(data_dir, tok):
    first = prepare_datasets(cfg(data_dir), tok, "sft")
    second = prepare_datasets(cfg(data_dir), tok, "sft")
    assert second.stats["cache"] == "hit" and second.fingerprint == first.fingerprint
    assert second.train["input_ids"] == first.train["input_ids"]
    assert second.reports[0].problems == first.reports[0].problems
    assert prepare_datasets(cfg(data_dir, cutoff_len=48), tok, "sft").stats["cache"] == "miss"
    assert prepare_datasets(cfg(data_dir, template="chatml"), tok, "sft").stats["cache"] == "miss"
    assert prepare_datasets(cfg(data_dir, overwrite_cache=True), tok, "sft").stats["cache"] == "miss"
    (data_dir / "qa.json").write_text(json.dumps(ROWS[:5]))
    assert prepare_datasets(cfg(data_dir), tok, "sft").stats["cache"] == "miss"


def test_tokenized_path_saves_then_loads(data_dir, tok, tmp_path):
    path = tmp_path / "tok"
    assert prepare_datasets(cfg(data_dir, tokenized_path=str(path)), tok, "sft").stats["cache"] == "miss"
    assert prepare_datasets(cfg(data_dir, tokenized_path=str(path)), tok, "sft").stats["cache"] == "tokenized_path"


def test_val_split_is_seeded_and_unpacked_option(data_dir, tok):
    a = prepare_datasets(cfg(data_dir, val_size=0.25, packing=False), tok, "sft")
    b = prepare_datasets(cfg(data_dir, val_size=0.25, packing=False, overwrite_cache=True), tok, "sft")
    assert len(a.eval) == 3 and len(a.train) == 9 and not a.stats["packed"]
    assert a.eval["input_ids"] == b.eval["input_ids"]
    assert "position_ids" not in a.train.column_names


def test_truncation_drops_and_counts(data_dir, tok):
    long_prompt = {"instruction": "word " * 80, "output": "short"}
    (data_dir / "qa.json").write_text(json.dumps(ROWS[:4] + [long_prompt] * 3))
    prepared = prepare_datasets(cfg(data_dir, cutoff_len=40), tok, "sft")
    assert prepared.stats["dropped_truncated"] == 3 and prepared.stats["samples"] == 4
    assert "3 dropped" in prepared.reports[0].format()
    (data_dir / "qa.json").write_text(json.dumps([long_prompt] * 2))
    with pytest.raises(DataError, match="cutoff_len"):
        prepare_datasets(cfg(data_dir, cutoff_len=40), tok, "sft")


def test_pretrain_blocks_and_packing(data_dir, tok):
    packed = prepare_datasets(cfg(data_dir, dataset="corpus", cutoff_len=32), tok, "pt")
    blocks = prepare_datasets(cfg(data_dir, dataset="corpus", cutoff_len=32, packing=False), tok, "pt")
    assert packed.stats["samples"] == blocks.stats["samples"] == 20
    assert all(len(ids) <= 32 for ids in packed.train["input_ids"])
    assert all(len(ids) == 32 for ids in blocks.train["input_ids"][:-1])
    assert packed.stats["total_tokens"] == blocks.stats["total_tokens"]


def test_bad_jsonl_line_is_reported_not_fatal(data_dir, tok):
    prepared = prepare_datasets(cfg(data_dir, dataset="chat"), tok, "sft")
    assert prepared.stats["samples"] == 1
    assert "chat.jsonl:2: not valid JSON" in prepared.reports[0].format()


def test_errors_for_missing_dataset_key_and_all_bad(data_dir, tok):
    with pytest.raises(DataError, match="key 'dataset'"):
        prepare_datasets(build_config({"dataset_dir": str(data_dir)}), tok, "sft")
    (data_dir / "qa.json").write_text(json.dumps(BAD * 4))
    with pytest.raises(DataError, match="none of its 4 rows"):
        prepare_datasets(cfg(data_dir), tok, "sft")
