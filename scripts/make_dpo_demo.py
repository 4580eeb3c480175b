"""Regenerate the preference demos ``dpo_en_demo`` (alpaca layout) and ``dpo_zh_demo``
(sharegpt layout) from the packaged instruction demos (stdlib only, deterministic).

Each pair asks one demo question; the chosen answer is the demo's complete answer opened
politely, the rejected one a curt refusal. The difference is one a tiny model learns in a few
steps, which is what the dpo tests need. Run ``python scripts/make_dpo_demo.py``; it rewrites
the two files and registers them at the end of ``dataset_info.json`` (other entries are kept).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "src" / "tunelab" / "resources" / "data"
SEED = 20240610
PAIRS = 300

OPENERS_EN = ["Sure! ", "Happy to help. ", "Of course. ", "Good question! ", "Certainly. "]
REFUSALS_EN = ["No.", "I won't answer that.", "Ask someone else.", "Not my problem.",
               "Figure it out yourself.", "I can't be bothered."]
OPENERS_ZH = ["好的！", "很乐意帮忙。", "当然可以。", "好问题！", "没问题。"]
REFUSALS_ZH = ["不。", "我不回答这个。", "去问别人吧。", "这不关我的事。", "自己想办法。", "懒得管。"]

DATASET_INFO = {
    "dpo_en_demo": {
        "file_name": "dpo_en_demo.json",
        "ranking": True,
        "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"},
    },
    "dpo_zh_demo": {
        "file_name": "dpo_zh_demo.json",
        "formatting": "sharegpt",
        "ranking": True,
        "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
    },
}


def _source(name: str) -> list[dict]:
    return json.loads((HERE / name).read_text(encoding="utf-8"))


def en_pairs(rng: random.Random) -> list[dict]:
    """Alpaca rows with ``chosen`` (polite, complete) and ``rejected`` (curt refusal)."""
    rows = _source("alpaca_en_demo.json")[:PAIRS]
    return [{"instruction": row["instruction"], "input": row["input"],
             "chosen": rng.choice(OPENERS_EN) + row["output"],
             "rejected": rng.choice(REFUSALS_EN)} for row in rows]


def zh_pairs(rng: random.Random) -> list[dict]:
    """Sharegpt rows: the question as a human turn, ``chosen``/``rejected`` as gpt messages."""
    rows = _source("alpaca_zh_demo.json")[:PAIRS]
    pairs = []
    for row in rows:
        question = row["instruction"] + (f"\n{row['input']}" if row["input"] else "")
        pairs.append({"conversations": [{"from": "human", "value": question}],
                      "chosen": {"from": "gpt", "value": rng.choice(OPENERS_ZH) + row["output"]},
                      "rejected": {"from": "gpt", "value": rng.choice(REFUSALS_ZH)}})
    return pairs


def _register() -> None:
    # Other people's entries stay where they are; ours are (re)written at the end.
    path = HERE / "dataset_info.json"
    info = json.loads(path.read_text(encoding="utf-8"))
    for name in DATASET_INFO:
        info.pop(name, None)
    info.update(DATASET_INFO)
    path.write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    rng = random.Random(SEED)
    for name, rows in (("dpo_en_demo.json", en_pairs(rng)), ("dpo_zh_demo.json", zh_pairs(rng))):
        (HERE / name).write_text(json.dumps(rows, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    _register()


if __name__ == "__main__":
    main()
