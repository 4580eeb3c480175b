"""Registry (dataset_info.json), readers and the validation report: no tokenizer needed."""

from __future__ import annotations

import csv
import json

import pytest

from tunelab.config.data import DataArgs
from tunelab.data.readers import read_rows
from tunelab.data.registry import load_registry, resolve
from tunelab.data.report import load_samples
from tunelab.errors import DataError

ALPACA = [{"instruction": "Say hi", "input": "", "output": "Hi!"},
          {"instruction": "Add", "input": "1+1", "output": "2", "history": [["a", "b"]]}]
SHAREGPT = [{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}],
             "system": "be brief"}]


def write_registry(tmp_path, info: dict | str, files: dict | None = None):
    text = info if isinstance(info, str) else json.dumps(info, indent=2)
    (tmp_path / "dataset_info.json").write_text(text)
    for name, rows in (files or {}).items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rows if isinstance(rows, str) else json.dumps(rows))
    return tmp_path


def test_llamafactory_registry_variants_load(tmp_path):
    info = {
        "alpaca_en_demo": {"file_name": "alpaca.json", "file_sha1": "abc"},
        "glaive": {"file_name": "g.json", "formatting": "sharegpt",
                   "columns": {"messages": "conversations", "tools": "tools"}},
        "mllm": {"file_name": "m.json", "formatting": "sharegpt", "columns": {"messages": "messages"},
                 "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                          "assistant_tag": "assistant"}},
        "oa": {"file_name": "o.jsonl", "formatting": "openai"},
        "c4": {"file_name": "c4.jsonl", "columns": {"prompt": "text"}},
        "hub": {"hf_hub_url": "org/ds", "subset": "en", "split": "test", "num_samples": 5},
    }
    reg = load_registry(write_registry(tmp_path, info))
    assert reg["alpaca_en_demo"].columns.prompt == "instruction"
    assert reg["glaive"].tags.role_tag == "from" and reg["glaive"].columns.tools == "tools"
    assert reg["mllm"].tags.observation_tag == "observation" and reg["mllm"].tags.user_tag == "user"
    assert reg["oa"].columns.messages == "messages" and reg["oa"].tags.role_tag == "role"
    assert reg["hub"].split == "test" and reg["hub"].num_samples == 5


@pytest.mark.parametrize("info, expected", [
    ({"x": {"file_name": "a.json", "colums": {}}}, ["entry 'x'", "'colums'", "did you mean 'columns'"]),
    ({"x": {"file_name": "a.json", "formatting": "sharegtp"}}, ["entry 'x'", "did you mean 'sharegpt'"]),
    ({"x": {"file_name": "a.json", "tags": {"role": "r"}}}, ["did you mean 'role_tag'"]),
    ({"x": {"formatting": "alpaca"}}, ["entry 'x'", "file_name"]),
    ('{"x": {"file_name": "a.json",}}', ["dataset_info.json", "line 1, column"]),
])
def test_registry_errors_name_file_and_key(tmp_path, info, expected):
    write_registry(tmp_path, info)
    with pytest.raises(DataError) as err:
        load_registry(tmp_path)
    for text in expected:
        assert text in str(err.value)
    assert "dataset_info.json" in str(err.value)


def test_missing_registry_says_where_it_looked(tmp_path):
    with pytest.raises(DataError, match=r"looked for .*dataset_info.json"):
        load_registry(tmp_path / "nope")


def test_unknown_dataset_lists_close_and_all_names(tmp_path):
    write_registry(tmp_path, {"alpaca_demo": {"file_name": "a.json"}, "other": {"file_name": "b.json"}})
    with pytest.raises(DataError) as err:
        resolve(["alpaca_dem"], tmp_path)
    text = str(err.value)
    assert "did you mean 'alpaca_demo'" in text and "alpaca_demo, other" in text


def test_readers_every_format(tmp_path):
    rows = [{"text": "one"}, {"text": "two"}]
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.json").write_text(json.dumps(rows))
    (tmp_path / "d" / "b.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with (tmp_path / "d" / "c.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["text"])
        writer.writeheader()
        writer.writerows(rows)
    (tmp_path / "d" / "e.txt").write_text("one\n\ntwo\n")
    import datasets

    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "d" / "f.parquet"))
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "arrow"))
    arrow = next((tmp_path / "arrow").glob("*.arrow"))
    arrow.rename(tmp_path / "d" / "g.arrow")
    write_registry(tmp_path, {"all": {"file_name": "d"}})
    got = read_rows(resolve("all", tmp_path)[0], tmp_path)
    assert [r["text"] for _, r in got] == ["one", "two"] * 6
    locations = [loc.rsplit("/", 1)[1] for loc, _ in got]
    assert locations[:4] == ["a.json:1", "a.json:2", "b.jsonl:1", "b.jsonl:2"]
    assert locations[4:8] == ["c.csv:2", "c.csv:3", "e.txt:1", "e.txt:3"]


def test_missing_file_names_path(tmp_path):
    write_registry(tmp_path, {"x": {"file_name": "missing.json"}})
    with pytest.raises(DataError, match=r"not found: .*missing.json"):
        read_rows(resolve("x", tmp_path)[0], tmp_path)


def test_hub_offline_suggests_file_name(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets

    # datasets reads the variable at import time, so a test must also flip its copy
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    write_registry(tmp_path, {"x": {"hf_hub_url": "nobody/not-a-dataset-xyz"}})
    with pytest.raises(DataError) as err:
        read_rows(resolve("x", tmp_path)[0], tmp_path)
    assert "HF_HUB_OFFLINE" in str(err.value) and "file_name" in str(err.value)


def test_num_samples_is_seeded_and_oversamples(tmp_path):
    rows = [{"text": str(i)} for i in range(10)]
    write_registry(tmp_path, {"x": {"file_name": "a.json", "num_samples": 4},
                              "y": {"file_name": "a.json", "num_samples": 25}}, {"a.json": rows})
    first = read_rows(resolve("x", tmp_path)[0], tmp_path)
    assert first == read_rows(resolve("x", tmp_path)[0], tmp_path) and len(first) == 4
    assert len(read_rows(resolve("y", tmp_path)[0], tmp_path)) == 25
    assert len(read_rows(resolve("y", tmp_path)[0], tmp_path, max_samples=3)) == 3


def test_load_samples_counts_bad_rows(tmp_path):
    rows = ALPACA + [{"instruction": "x", "output": ""}, {"instrction": "x", "output": "y"}]
    write_registry(tmp_path, {"a": {"file_name": "a.json"}, "s": {"file_name": "s.json",
                   "formatting": "sharegpt", "columns": {"system": "system"}}},
                   {"a.json": rows, "s.json": SHAREGPT})
    samples, reports = load_samples(DataArgs(dataset_dir=str(tmp_path)), ["a", "s"], "sft")
    assert len(samples) == 3 and samples[2].system == "be brief"
    assert [(r.total, r.valid) for r in reports] == [(4, 2), (1, 1)]
    text = reports[0].format()
    assert "a.json:3: empty assistant turn" in text and "a.json:4: missing column 'instruction'" in text


def test_all_bad_dataset_error_names_count_and_reasons(tmp_path):
    rows = [{"instruction": "x", "output": ""}] * 5
    write_registry(tmp_path, {"bad": {"file_name": "bad.json"}}, {"bad.json": rows})
    with pytest.raises(DataError) as err:
        load_samples(DataArgs(dataset_dir=str(tmp_path)), ["bad"], "sft")
    text = str(err.value)
    assert "none of its 5 rows" in text and "bad.json:1: empty assistant turn" in text
    assert "and 2 more" in text
