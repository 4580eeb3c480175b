"""Write the GRPO demo dataset, ``grpo_math_demo`` (stdlib only, deterministic).

Short arithmetic questions, each with its answer in an ``answer`` column for the ``accuracy``
reward. Run ``python scripts/make_grpo_demo.py``: it rewrites ``grpo_math_demo.json`` in
``src/tunelab/resources/data/`` and registers it in ``dataset_info.json`` (other entries kept).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "src" / "tunelab" / "resources" / "data"
SEED = 20240617
NAME, FILE = "grpo_math_demo", "grpo_math_demo.json"
ENTRY = {"file_name": FILE, "formatting": "alpaca", "columns": {"prompt": "question"}}

EN_NAMES = ("Ava", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goro", "Hana", "Ivan", "Jade")
EN_THINGS = ("apples", "stamps", "marbles", "books", "shells", "coins")
ZH_NAMES = ("小明", "小红", "小华", "小丽", "小刚")
ZH_THINGS = ("苹果", "邮票", "弹珠", "本书", "贝壳")


def _en(rng: random.Random) -> tuple[str, int]:
    a, b = rng.randint(2, 50), rng.randint(2, 50)
    kind = rng.choice(("add", "sub", "mul", "story_add", "story_sub"))
    if kind == "add":
        return rng.choice(("What is {a} + {b}?", "Add {a} and {b}.", "Calculate {a} plus {b}.")).format(a=a, b=b), a + b
    if kind == "sub":
        a, b = max(a, b), min(a, b)
        return rng.choice(("What is {a} - {b}?", "Subtract {b} from {a}.")).format(a=a, b=b), a - b
    if kind == "mul":
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        return rng.choice(("What is {a} x {b}?", "Multiply {a} by {b}.")).format(a=a, b=b), a * b
    name, thing = rng.choice(EN_NAMES), rng.choice(EN_THINGS)
    if kind == "story_add":
        return f"{name} has {a} {thing} and gets {b} more. How many {thing} does {name} have now?", a + b
    a, b = max(a, b), min(a, b)
    return f"{name} has {a} {thing} and gives away {b}. How many {thing} are left?", a - b


def _zh(rng: random.Random) -> tuple[str, int]:
    a, b = rng.randint(2, 50), rng.randint(2, 50)
    kind = rng.choice(("add", "sub", "story"))
    if kind == "add":
        return f"{a} 加 {b} 等于多少？", a + b
    if kind == "sub":
        a, b = max(a, b), min(a, b)
        return f"{a} 减 {b} 等于多少？", a - b
    name, thing = rng.choice(ZH_NAMES), rng.choice(ZH_THINGS)
    return f"{name}有 {a} 个{thing}，又得到 {b} 个。{name}现在有多少个{thing}？", a + b


def rows(total_en: int = 150, total_zh: int = 50) -> list[dict]:
    """``{"question", "answer"}`` rows: English then Chinese, no question twice."""
    rng = random.Random(SEED)
    out, seen = [], set()
    for maker, total in ((_en, total_en), (_zh, total_zh)):
        made = 0
        while made < total:
            question, answer = maker(rng)
            if question in seen:
                continue
            seen.add(question)
            out.append({"question": question, "answer": str(answer)})
            made += 1
    return out


def main() -> None:
    (HERE / FILE).write_text(json.dumps(rows(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    path = HERE / "dataset_info.json"
    info = json.loads(path.read_text(encoding="utf-8"))
    info[NAME] = ENTRY
    path.write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
