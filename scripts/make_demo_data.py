"""Regenerate TuneLab's demo datasets (stdlib only, deterministic).

Run ``python scripts/make_demo_data.py`` from anywhere; it rewrites the demo files in the package's
``src/tunelab/resources/data/`` (shipped as package data) and merges their entries into ``dataset_info.json`` (entries other people registered are kept).
All wording lives in ``demo_text.py``; this file only assembles rows, so the output is the same
on every run (a fixed ``random.Random`` seed, no clock, no environment).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import demo_text as T

HERE = Path(__file__).resolve().parents[1] / "src" / "tunelab" / "resources" / "data"
SEED = 20240601


# ---------------------------------------------------------------- identity

def identity_rows() -> list[dict]:
    """Self-introduction rows; answers keep the {{name}} / {{author}} placeholders."""
    rows = []
    for questions, answers in ((T.IDENTITY_Q_EN, T.IDENTITY_A_EN), (T.IDENTITY_Q_ZH, T.IDENTITY_A_ZH)):
        for i, question in enumerate(questions):
            # Cycle through answers so every answer appears and neighbours differ.
            rows.append({"instruction": question, "input": "", "output": answers[i % len(answers)]})
    return rows


# ---------------------------------------------------------------- computed English tasks

def _en_arithmetic(rng: random.Random) -> tuple[str, str, str]:
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    kind = rng.choice(["add", "sub", "mul", "div", "story"])
    if kind == "add":
        return rng.choice(["What is {a} + {b}?", "Add {a} and {b}.", "Calculate {a} plus {b}."]).format(a=a, b=b), "", f"{a} + {b} = {a + b}."
    if kind == "sub":
        a, b = max(a, b), min(a, b)
        return f"What is {a} minus {b}?", "", f"{a} - {b} = {a - b}."
    if kind == "mul":
        return f"Multiply {a} by {b}.", "", f"{a} × {b} = {a * b}."
    if kind == "div":
        return f"What is {a * b} divided by {b}?", "", f"{a * b} ÷ {b} = {a}."
    name, thing = rng.choice(T.EN_NAMES), rng.choice(["apples", "stamps", "marbles", "books", "pencils"])
    q = f"{name} has {a} {thing} and gets {b} more. How many {thing} does {name} have now?"
    return q, "", f"{name} starts with {a} {thing} and gets {b} more, so {name} now has {a} + {b} = {a + b} {thing}."


def _en_conversion(rng: random.Random) -> tuple[str, str, str]:
    unit_from, unit_to, factor, offset = rng.choice(T.EN_CONVERSIONS)
    value = rng.choice([1, 2, 3, 5, 8, 10, 12, 15, 20, 25, 30, 42, 50, 75, 100])
    result = round(value * factor + offset, 2)
    q = rng.choice(["Convert {v} {f} to {t}.", "How many {t} are in {v} {f}?", "Express {v} {f} in {t}."])
    how = f"multiply by {factor}" + (f" and add {offset}" if offset else "")
    return q.format(v=value, f=unit_from, t=unit_to), "", f"{value} {unit_from} is {result:g} {unit_to} (to convert, {how})."


def _en_listing(rng: random.Random) -> tuple[str, str, str]:
    category, items = rng.choice(list(T.EN_CATEGORIES.items()))
    n = rng.randint(3, 6)
    words = ["three", "four", "five", "six"][n - 3]
    chosen = rng.sample(items, n)
    q = rng.choice([f"List {words} {category}.", f"Name {words} {category}.", f"Give me {words} examples of {category}."])
    return q, "", "\n".join(f"{i}. {item}" for i, item in enumerate(chosen, 1))


def _en_numbers(rng: random.Random) -> tuple[str, str, str]:
    nums = rng.sample(range(1, 200), rng.randint(4, 8))
    shown = ", ".join(map(str, nums))
    kind = rng.choice(["sort", "max", "sum", "prime"])
    if kind == "sort":
        return "Sort these numbers in ascending order.", shown, ", ".join(map(str, sorted(nums)))
    if kind == "max":
        return "Find the largest number in the list.", shown, f"The largest number is {max(nums)}."
    if kind == "sum":
        return "Add up the following numbers.", shown, f"The sum is {sum(nums)}."
    n = nums[0]
    factor = next((d for d in range(2, n) if n % d == 0), None)
    if n < 2:
        return f"Is {n} a prime number?", "", f"No. {n} is not a prime number; primes are greater than 1."
    if factor:
        return f"Is {n} a prime number?", "", f"No, {n} is not prime because it is divisible by {factor} ({n} = {factor} × {n // factor})."
    return f"Is {n} a prime number?", "", f"Yes, {n} is a prime number: it has no divisors other than 1 and itself."


def _en_text_ops(rng: random.Random) -> tuple[str, str, str]:
    sentence = rng.choice(T.EN_SENTENCES)
    kind = rng.choice(["count", "upper", "reverse", "first"])
    if kind == "count":
        return "How many words are in the following sentence?", sentence, f"The sentence has {len(sentence.split())} words."
    if kind == "upper":
        return "Convert the following text to uppercase.", sentence, sentence.upper()
    if kind == "reverse":
        words = sentence.rstrip(".").split()
        return "Reverse the order of the words in this sentence.", sentence, " ".join(reversed(words)) + "."
    return "What is the first word of the sentence below?", sentence, f'The first word is "{sentence.split()[0]}".'


def alpaca_en_rows(rng: random.Random, total: int = 300) -> list[dict]:
    """Hand-written English rows first, then computed ones until ``total`` distinct rows."""
    rows = [_row(q, "", a) for q, a in T.EN_EXPLAIN]
    rows += [_row(f"What is the capital of {c}?", "", f"The capital of {c} is {cap}.") for c, cap in T.CAPITALS_EN]
    rows += [_row(f"Summarize the following text in one sentence.", text, summary) for text, summary in T.EN_SUMMARIES]
    rows += [_row("Classify the sentiment of this review as positive, negative or neutral.", text, label)
             for text, label in T.EN_SENTIMENT]
    rows += [_row(instr, src, out) for instr, src, out in T.EN_REWRITES]
    for phrase, translations in T.PHRASES:
        for lang, text in zip(("French", "Spanish", "German"), translations):
            rows.append(_row(f"Translate into {lang}: {phrase}", "", text))
    return _fill(rows, rng, [_en_arithmetic, _en_conversion, _en_listing, _en_numbers, _en_text_ops], total)


# ---------------------------------------------------------------- computed Chinese tasks

def _zh_arithmetic(rng: random.Random) -> tuple[str, str, str]:
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    kind = rng.choice(["add", "sub", "mul", "story"])
    if kind == "add":
        return f"计算 {a} 加 {b} 等于多少?", "", f"{a} + {b} = {a + b}。"
    if kind == "sub":
        a, b = max(a, b), min(a, b)
        return f"{a} 减去 {b} 是多少?", "", f"{a} - {b} = {a - b}。"
    if kind == "mul":
        return f"请计算 {a} 乘以 {b}。", "", f"{a} × {b} = {a * b}。"
    name = rng.choice(T.ZH_NAMES)
    return f"{name}有 {a} 本书,又买了 {b} 本,现在一共有多少本?", "", f"{name}原来有 {a} 本,又买了 {b} 本,所以一共有 {a} + {b} = {a + b} 本书。"


def _zh_conversion(rng: random.Random) -> tuple[str, str, str]:
    unit_from, unit_to, factor, offset = rng.choice(T.ZH_CONVERSIONS)
    value = rng.choice([1, 2, 3, 5, 8, 10, 12, 20, 25, 36, 50, 100])
    result = round(value * factor + offset, 2)
    return f"{value} {unit_from}等于多少{unit_to}?", "", f"{value} {unit_from}等于 {result:g} {unit_to}。"


def _zh_listing(rng: random.Random) -> tuple[str, str, str]:
    category, items = rng.choice(list(T.ZH_CATEGORIES.items()))
    n = rng.randint(3, 5)
    chosen = rng.sample(items, n)
    counts = {3: "三", 4: "四", 5: "五"}
    return f"请列出{counts[n]}种{category}。", "", "\n".join(f"{i}. {item}" for i, item in enumerate(chosen, 1))


def _zh_numbers(rng: random.Random) -> tuple[str, str, str]:
    nums = rng.sample(range(1, 200), rng.randint(4, 7))
    shown = "、".join(map(str, nums))
    kind = rng.choice(["sort", "max", "sum"])
    if kind == "sort":
        return "把下面的数字从小到大排序。", shown, "、".join(map(str, sorted(nums)))
    if kind == "max":
        return "找出下面这组数字中最大的一个。", shown, f"最大的数字是 {max(nums)}。"
    return "求下面这些数字的和。", shown, f"它们的和是 {sum(nums)}。"


def _zh_text_ops(rng: random.Random) -> tuple[str, str, str]:
    sentence = rng.choice(T.ZH_SENTENCES)
    han = sum(1 for ch in sentence if "\u4e00" <= ch <= "\u9fff")
    if rng.random() < 0.5:
        return "下面这句话有多少个汉字?", sentence, f"这句话一共有 {han} 个汉字。"
    return "请把下面这句话改写成疑问句。", sentence, sentence.rstrip("。") + "吗?"


def alpaca_zh_rows(rng: random.Random, total: int = 300) -> list[dict]:
    """Hand-written Chinese rows first, then computed ones until ``total`` distinct rows."""
    rows = [_row(q, "", a) for q, a in T.ZH_EXPLAIN]
    rows += [_row(f"{c}的首都是哪里?", "", f"{c}的首都是{cap}。") for c, cap in T.CAPITALS_ZH]
    rows += [_row("用一句话概括下面这段文字。", text, summary) for text, summary in T.ZH_SUMMARIES]
    rows += [_row("判断这条评论的情感是正面、负面还是中性。", text, label) for text, label in T.ZH_SENTIMENT]
    rows += [_row("把下面的中文翻译成英文。", zh, en) for zh, en in T.ZH_EN_PHRASES]
    rows += [_row("把下面的英文翻译成中文。", en, zh) for zh, en in T.ZH_EN_PHRASES[::2]]
    return _fill(rows, rng, [_zh_arithmetic, _zh_conversion, _zh_listing, _zh_numbers, _zh_text_ops], total)


# ---------------------------------------------------------------- shared helpers

def _row(instruction: str, input_text: str, output: str) -> dict:
    return {"instruction": instruction, "input": input_text, "output": output}


def _fill(rows: list[dict], rng: random.Random, makers: list, total: int) -> list[dict]:
    """Top ``rows`` up with computed rows (no duplicate prompts), then shuffle deterministically."""
    seen = {(r["instruction"], r["input"]) for r in rows}
    while len(rows) < total:
        instruction, input_text, output = rng.choice(makers)(rng)
        if (instruction, input_text) not in seen:
            seen.add((instruction, input_text))
            rows.append(_row(instruction, input_text, output))
    rows = rows[:total]
    rng.shuffle(rows)
    return rows


def _prompt_of(row: dict) -> str:
    return row["instruction"] + ("\n" + row["input"] if row["input"] else "")


# ---------------------------------------------------------------- sharegpt / openai

def _tool_conversation(rng: random.Random, case: dict) -> dict:
    call = {"name": case["tool"], "arguments": case["arguments"]}
    turns = [
        {"from": "human", "value": case["question"]},
        {"from": "function_call", "value": json.dumps(call, ensure_ascii=False)},
        {"from": "observation", "value": json.dumps(case["result"], ensure_ascii=False)},
        {"from": "gpt", "value": case["answer"]},
    ]
    tools = [T.TOOL_SCHEMAS[case["tool"]]] + [T.TOOL_SCHEMAS[n] for n in sorted(T.TOOL_SCHEMAS) if n != case["tool"]][:1]
    return {"conversations": turns, "system": rng.choice(T.SYSTEM_PROMPTS_TOOLS), "tools": json.dumps(tools, ensure_ascii=False)}


def sharegpt_rows(rng: random.Random, pool: list[dict]) -> list[dict]:
    """~30 conversations: multi-turn chats built from ``pool`` rows plus tool-calling chats."""
    rows = [_tool_conversation(rng, case) for case in T.TOOL_CASES]
    picks = rng.sample(pool, 2 * (30 - len(rows)) + 8)
    while len(rows) < 30:
        n_turns = rng.choice([1, 2, 2, 3])
        turns = []
        for _ in range(n_turns):
            row = picks.pop()
            turns += [{"from": "human", "value": _prompt_of(row)}, {"from": "gpt", "value": row["output"]}]
        rows.append({"conversations": turns, "system": rng.choice(T.SYSTEM_PROMPTS), "tools": ""})
    rng.shuffle(rows)
    return rows


def openai_rows(rng: random.Random, pool: list[dict]) -> list[dict]:
    """~20 rows in the OpenAI ``messages`` style (system optional, one or two exchanges)."""
    picks = rng.sample(pool, 40)
    rows = []
    for i in range(20):
        messages = [{"role": "system", "content": rng.choice(T.SYSTEM_PROMPTS)}] if i % 3 else []
        for _ in range(1 + (i % 4 == 0)):
            row = picks.pop()
            messages += [{"role": "user", "content": _prompt_of(row)}, {"role": "assistant", "content": row["output"]}]
        rows.append({"messages": messages})
    return rows


# ---------------------------------------------------------------- pretraining prose

def pt_rows(rng: random.Random, total: int = 200) -> list[dict]:
    """Paragraphs of 1-6 sentences drawn in order from one topic, so they read as prose."""
    topics = list(T.PROSE_EN.values()) + list(T.PROSE_ZH.values())
    seen, rows = set(), []
    while len(rows) < total:
        sentences = rng.choice(topics)
        k = rng.choice([1, 2, 3, 3, 4, 5, 6])
        picked = sorted(rng.sample(range(len(sentences)), min(k, len(sentences))))
        joiner = "" if sentences[0][-1] == "。" else " "
        text = joiner.join(sentences[i] for i in picked)
        if text not in seen:
            seen.add(text)
            rows.append({"text": text})
    return rows


# ---------------------------------------------------------------- registry and output

DATASET_INFO = {
    "identity": {"file_name": "identity.json", "formatting": "alpaca",
                 "columns": {"prompt": "instruction", "query": "input", "response": "output"}},
    "alpaca_en_demo": {"file_name": "alpaca_en_demo.json", "formatting": "alpaca",
                       "columns": {"prompt": "instruction", "query": "input", "response": "output"}},
    "alpaca_zh_demo": {"file_name": "alpaca_zh_demo.json", "formatting": "alpaca",
                       "columns": {"prompt": "instruction", "query": "input", "response": "output"}},
    "sharegpt_demo": {"file_name": "sharegpt_demo.json", "formatting": "sharegpt",
                      "columns": {"messages": "conversations", "system": "system", "tools": "tools"}},
    "pt_demo": {"file_name": "pt_demo.jsonl", "columns": {"prompt": "text"}},
    "openai_demo": {"file_name": "openai_demo.json", "formatting": "sharegpt",
                    "columns": {"messages": "messages"},
                    "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                             "assistant_tag": "assistant", "system_tag": "system"}},
}


def _write_json(name: str, rows: list[dict]) -> None:
    (HERE / name).write_text(json.dumps(rows, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _write_jsonl(name: str, rows: list[dict]) -> None:
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    (HERE / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _merge_dataset_info() -> None:
    # Other datasets may be registered by hand in the same file: update only ours.
    path = HERE / "dataset_info.json"
    info = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    info.update(DATASET_INFO)
    path.write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    """Write every demo file and register them."""
    rng = random.Random(SEED)
    en, zh = alpaca_en_rows(rng), alpaca_zh_rows(rng)
    _write_json("identity.json", identity_rows())
    _write_json("alpaca_en_demo.json", en)
    _write_json("alpaca_zh_demo.json", zh)
    _write_json("sharegpt_demo.json", sharegpt_rows(rng, en + zh))
    _write_json("openai_demo.json", openai_rows(rng, en + zh))
    _write_jsonl("pt_demo.jsonl", pt_rows(rng))
    _merge_dataset_info()


if __name__ == "__main__":
    main()
