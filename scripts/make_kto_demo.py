"""Write TuneLab's KTO demo dataset ``kto_en_demo`` (stdlib only, deterministic).

Run ``python scripts/make_kto_demo.py`` from anywhere. It rewrites
``src/tunelab/resources/data/kto_en_demo.json`` and registers it in that folder's
``dataset_info.json`` (other entries are kept). The layout is the one LLaMA-Factory ships its
``kto_en_demo`` in: OpenAI-style ``messages`` (``role``/``content``) plus a boolean ``label``
column that is the ``kto_tag``.

Each row is one question with one answer. Desirable answers are helpful and correct, and say so
politely ("Sure! 12 + 30 = 42."); undesirable ones brush the user off, or give a wrong answer
in a curt tone. The two kinds differ in wording a tiny model picks up within a few dozen steps,
so a test can see KTO move it towards the first kind. The wording lives here because no other
demo uses it; question topics reuse ``demo_text.py``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import demo_text as T

HERE = Path(__file__).resolve().parents[1] / "src" / "tunelab" / "resources" / "data"
SEED = 20240611
ROWS = 300
ENTRY = {"kto_en_demo": {
    "file_name": "kto_en_demo.json", "formatting": "sharegpt",
    "columns": {"messages": "messages", "kto_tag": "label"},
    "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
             "assistant_tag": "assistant", "system_tag": "system"}}}

GOOD_OPENINGS = ["Sure!", "Happy to help!", "Of course!", "Good question!"]
GOOD_CLOSINGS = ["", " Let me know if you need anything else.", " I hope this helps."]
BRUSH_OFFS = ["I can't be bothered with that right now.", "Ask someone else, I'm busy.",
              "Why would I know that? Look it up yourself.", "Not my problem. Next question.",
              "That is a boring question. I won't answer it."]
CURT_OPENINGS = ["Obviously", "Whatever,", "Ugh, fine:", "Seriously?"]


def arithmetic(rng: random.Random) -> tuple[str, str, str]:
    """(question, correct statement, wrong statement) of a small sum, difference or product."""
    a, b = rng.randint(2, 60), rng.randint(2, 60)
    op = rng.choice(["+", "-", "x"])
    if op == "-":
        a, b = max(a, b), min(a, b)
    value = {"+": a + b, "-": a - b, "x": a * b}[op]
    question = rng.choice(["What is {a} {op} {b}?", "Calculate {a} {op} {b}.", "How much is {a} {op} {b}?"])
    wrong = value + rng.choice([-3, -2, -1, 1, 2, 5, 10])
    return question.format(a=a, op=op, b=b), f"{a} {op} {b} = {value}.", f"{a} {op} {b} = {wrong}."


def capital(rng: random.Random) -> tuple[str, str, str]:
    country, city = rng.choice(T.CAPITALS_EN)
    other = rng.choice([c for _, c in T.CAPITALS_EN if c != city])
    question = rng.choice(["What is the capital of {c}?", "Which city is the capital of {c}?"])
    return (question.format(c=country), f"The capital of {country} is {city}.",
            f"the capital of {country} is {other}.")


def conversion(rng: random.Random) -> tuple[str, str, str]:
    unit_from, unit_to, factor, offset = rng.choice(T.EN_CONVERSIONS)
    value = rng.choice([1, 2, 3, 5, 10, 12, 20, 25, 50, 100])
    result = round(value * factor + offset, 2)
    wrong = round(result * rng.choice([0.5, 2, 3]) + 1, 2)
    return (f"Convert {value} {unit_from} to {unit_to}.", f"{value} {unit_from} is {result:g} {unit_to}.",
            f"{value} {unit_from} is {wrong:g} {unit_to}.")


def count_words(rng: random.Random) -> tuple[str, str, str]:
    sentence = rng.choice(T.EN_SENTENCES)
    n = len(sentence.split())
    return (f"How many words are in this sentence: \"{sentence}\"", f"The sentence has {n} words.",
            f"it has {n + rng.choice([-2, -1, 2, 3])} words.")


TOPICS = (arithmetic, capital, conversion, count_words)


def answer(rng: random.Random, correct: str, wrong: str, desirable: bool) -> str:
    if desirable:
        return f"{rng.choice(GOOD_OPENINGS)} {correct}{rng.choice(GOOD_CLOSINGS)}"
    if rng.random() < 0.5:
        return rng.choice(BRUSH_OFFS)
    return f"{rng.choice(CURT_OPENINGS)} {wrong} Don't ask me again."


def rows(rng: random.Random) -> list[dict]:
    """Half desirable, half undesirable, in a shuffled order (KTO's batches mix both)."""
    labels = [i % 2 == 0 for i in range(ROWS)]
    rng.shuffle(labels)
    out = []
    for desirable in labels:
        question, correct, wrong = rng.choice(TOPICS)(rng)
        out.append({"messages": [{"role": "user", "content": question},
                                 {"role": "assistant", "content": answer(rng, correct, wrong, desirable)}],
                    "label": desirable})
    return out


def main() -> None:
    (HERE / "kto_en_demo.json").write_text(
        json.dumps(rows(random.Random(SEED)), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    path = HERE / "dataset_info.json"
    info = json.loads(path.read_text(encoding="utf-8"))
    info.update(ENTRY)
    path.write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
