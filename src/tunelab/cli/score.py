"""``tunelab score RUN_OR_MODEL [key=value ...] (--text TEXT ... | --file rows.jsonl) [--json]``."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from tunelab.errors import DataError

DESCRIPTION = """Score texts with a reward model: a run trained with stage: rm (its folder or a
checkpoint-N in it), or a full sequence-classification model folder.

  tunelab score saves/rm --text "a whole text"        scored exactly as given
  tunelab score saves/rm --file rows.jsonl           one JSON object per line (or a JSON list):
      {"prompt": "...", "response": "..."}            the reward of the response
      {"prompt": "...", "chosen": "...", "rejected": "..."}
                                                      both rewards, and whether chosen wins
      {"text": "..."}                                 a whole text

A prompt with its response is rendered with the run's chat template and cut into tokens exactly
as training did; a chosen/rejected row without "prompt" scores both sides as whole texts. The
API gives the same numbers: `tunelab api --adapter saves/rm`, then POST /v1/score."""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("score", help="score texts with a reward model (stage rm)",
                            description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", metavar="RUN_OR_MODEL",
                        help="reward model: an rm run directory, a checkpoint-N folder, or a model folder")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="recipe keys, e.g. model_name_or_path=BASE infer_device=cpu")
    parser.add_argument("--text", action="append", default=[], help="a whole text to score (repeatable)")
    parser.add_argument("--file", help="JSON lines (or a JSON list) of prompt/response, "
                        "prompt/chosen/rejected or text rows")
    parser.add_argument("--json", action="store_true", help="print one JSON object per input")
    parser.set_defaults(func=run)


@dataclass
class Row:
    """One line of output: a text, a prompt/response, or a chosen/rejected pair (two inputs)."""

    origin: str
    inputs: list
    labels: list[str]
    pair: bool = False


def run(args: argparse.Namespace) -> int:
    from tunelab.config import load_config
    from tunelab.infer.score import RewardScorer

    rows = [_text_row(f"--text {i + 1}", text) for i, text in enumerate(args.text)]
    if args.file:
        rows += read_rows(Path(args.file))
    if not rows:
        raise DataError("nothing to score", where="command line",
                        hint="give --text TEXT (repeatable) or --file rows.jsonl")
    key = "adapter_name_or_path" if (Path(args.model) / "adapter_config.json").is_file() else "model_name_or_path"
    cfg = load_config(None, [*args.overrides, f"{key}={args.model}"])
    scorer = RewardScorer(cfg)
    scores = _score_all(scorer, rows)
    for row, values in zip(rows, scores):
        print(_format(row, values, args.json))
    pairs = [values for row, values in zip(rows, scores) if row.pair]
    if pairs and not args.json:
        wins = sum(1 for chosen, rejected in pairs if chosen[0] > rejected[0])
        print(f"chosen scores higher on {wins} of {len(pairs)} pairs ({100 * wins / len(pairs):.1f}%)")
    return 0


def _score_all(scorer, rows: list[Row]) -> list[list[tuple[float, int]]]:
    """Every row's scores, in requests of at most ``max_choices`` inputs (the server's bound)."""
    from tunelab.infer.request import RequestError

    items = [(item, label) for row in rows for item, label in zip(row.inputs, row.labels)]
    flat: list[tuple[float, int]] = []
    step = scorer.limits.choices
    for start in range(0, len(items), step):
        chunk = items[start:start + step]
        try:
            flat += scorer.score([item for item, _ in chunk], labels=[label for _, label in chunk])
        except RequestError as exc:
            raise DataError(exc.problem, where=exc.param, hint=exc.hint) from None
    out, at = [], 0
    for row in rows:
        out.append(flat[at:at + len(row.inputs)])
        at += len(row.inputs)
    return out


def _format(row: Row, values: list[tuple[float, int]], as_json: bool) -> str:
    if row.pair:
        (chosen, _), (rejected, _) = values
        if as_json:
            return json.dumps({"row": row.origin, "chosen": chosen, "rejected": rejected,
                               "chosen_wins": chosen > rejected})
        verdict = "chosen wins" if chosen > rejected else "REJECTED wins"
        return f"{row.origin}: chosen {chosen:+.4f}  rejected {rejected:+.4f}  {verdict}"
    score, tokens = values[0]
    if as_json:
        return json.dumps({"row": row.origin, "score": score, "tokens": tokens})
    return f"{row.origin}: {score:+.4f}"


def read_rows(path: Path) -> list[Row]:
    """The rows of a .jsonl (or JSON list) file; DataError naming the line and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}", where="--file") from None
    if text.lstrip().startswith("["):
        try:
            items = list(enumerate(json.loads(text), start=1))
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON: {exc}", where=str(path)) from None
    else:
        items = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    return [_row(f"{path}:{n}", item) for n, item in items]


def _row(origin: str, item) -> Row:
    from tunelab.infer.score import ScoreInput

    if isinstance(item, str):
        try:
            item = json.loads(item)
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON: {exc}", where=origin) from None
    if not isinstance(item, dict):
        raise DataError(f"a row must be a JSON object, got {type(item).__name__}", where=origin)
    _check_text_fields(origin, item)
    if "chosen" in item or "rejected" in item:
        return _pair_row(origin, item)
    if "response" in item:
        if "prompt" not in item:
            raise DataError("a 'response' needs its 'prompt'", where=origin)
        return Row(origin, [ScoreInput(prompt=item["prompt"], response=item["response"])], [origin])
    if "text" in item:
        return _text_row(origin, item["text"])
    raise DataError(f"no field to score; the row has {', '.join(map(repr, item)) or 'no fields'}",
                    where=origin, hint="give prompt + response, prompt + chosen + rejected, or text")


def _check_text_fields(origin: str, item: dict) -> None:
    for field in ("prompt", "response", "chosen", "rejected", "text"):
        if field in item and not isinstance(item[field], str):
            raise DataError(f"field '{field}' must be text, got {type(item[field]).__name__}",
                            where=origin)


def _pair_row(origin: str, item: dict) -> Row:
    from tunelab.infer.score import ScoreInput

    missing = [side for side in ("chosen", "rejected") if side not in item]
    if missing:
        raise DataError(f"a pair needs both 'chosen' and 'rejected'; '{missing[0]}' is missing",
                        where=origin)
    prompt = item.get("prompt")
    sides = [ScoreInput(prompt=prompt, response=item[s]) if prompt is not None else ScoreInput(text=item[s])
             for s in ("chosen", "rejected")]
    return Row(origin, sides, [f"{origin} (chosen)", f"{origin} (rejected)"], pair=True)


def _text_row(origin: str, text: str) -> Row:
    from tunelab.infer.score import ScoreInput

    return Row(origin, [ScoreInput(text=text)], [origin])
