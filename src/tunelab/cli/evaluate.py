"""``tunelab eval TARGET [--predict] [--perplexity] [--tasks NAMES] [--compare BASE RUN ...]``."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from tunelab.cli.common import keys_epilog

DESCRIPTION = """Did the fine-tune work? Score a run, a recipe's model or any model, or compare several.

TARGET is a run directory (an adapter run, a checkpoint-N folder, a full fine-tune), a recipe
(its model + adapters; a training recipe whose output_dir holds the trained run evaluates that
run), or a model (folder, hub id, tunelab/tiny-chat). Several kinds may be given at once:

  --predict     generate an answer for every row of --dataset (through the chat engine, with
                the run's own template, greedy unless do_sample=true) and score it against the
                row's answer: BLEU-4 and ROUGE-1/2/L F (percent; words cut by jieba, so Chinese
                is scored on words too; bleu-4-char is LLaMA-Factory's character BLEU-4), exact
                match, mean answer length in tokens, share of empty and of truncated answers.
                Rows go to eval/generated_predictions.jsonl (prompt, label, prediction) as they
                finish; Ctrl-C keeps them and says how many are done.
  --perplexity  mean token loss and perplexity on --dataset, encoded and masked exactly as
                training encodes it (assistant tokens only for sft data).
  --tasks       benchmarks through EleutherAI's lm-evaluation-harness (pip install
                'tunelab[eval]'): its task names unchanged (mmlu, cmmlu, ceval-valid, gsm8k,
                hellaswag, ...), or your own task folders with --include-path (these work
                offline; hub datasets need the hub or a filled HF_DATASETS_CACHE).

A run is evaluated with the keys it was trained with (template, placeholders, cutoff_len);
key=value words override any recipe key (max_samples=, max_new_tokens=, dataset_dir=, ...).
Each evaluation writes <run>/eval/<kind>_<data>.json (what, model, adapters, settings,
versions, metrics, duration); a model that is not a run writes under --save-dir. A table is
printed at the end; --compare puts the targets side by side with each one's difference from
the first.

examples:
  tunelab eval saves/demo --predict --dataset identity --max-samples 50
  tunelab eval saves/demo --perplexity --dataset alpaca_en_demo
  tunelab eval saves/demo --tasks mmlu,cmmlu --num-fewshot 5 --limit 100
  tunelab eval saves/demo --tasks my_task --include-path my_tasks/ --apply-chat-template
  tunelab eval --compare tunelab/tiny-chat saves/demo --predict --perplexity --dataset identity"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("eval", help="score a run or model: predictions + BLEU/ROUGE, perplexity, "
                            "lm-eval benchmarks, side-by-side comparisons",
                            description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog=keys_epilog(("model", "infer"), keys=_EVAL_KEYS))
    parser.add_argument("recipe", nargs="?", metavar="TARGET",
                        help="run directory, checkpoint folder, recipe YAML or model to evaluate")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="override any recipe key")
    parser.add_argument("--compare", nargs="+", metavar="TARGET",
                        help="evaluate each target the same way and print them side by side, with "
                             "each one's difference from the first (put the base first)")
    _add_kind_flags(parser)
    parser.add_argument("--save-dir", default="evals",
                        help="where results of a model that is not a run go: DIR/<model>/eval/ "
                             "(default: evals)")
    parser.add_argument("--json", action="store_true", help="print the records as JSON instead of a table")
    parser.set_defaults(func=run)


_EVAL_KEYS = ("dataset_dir", "max_samples", "template", "cutoff_len", "default_system", "enable_thinking",
              "placeholders", "per_device_eval_batch_size")


def _add_kind_flags(parser: argparse.ArgumentParser) -> None:
    kinds = parser.add_argument_group("what to evaluate")
    kinds.add_argument("--predict", action="store_true", help="generate answers and score them")
    kinds.add_argument("--perplexity", action="store_true", help="mean token loss and perplexity")
    kinds.add_argument("--dataset", help="datasets for --predict / --perplexity, comma-separated "
                       "(default: a recipe's eval_dataset or dataset)")
    kinds.add_argument("--max-samples", type=int, help="rows per dataset (max_samples)")
    kinds.add_argument("--dataset-dir", help="folder with dataset_info.json (dataset_dir)")
    bench = parser.add_argument_group("benchmarks (lm-evaluation-harness)")
    bench.add_argument("--tasks", help="lm-eval task, group or tag names, comma-separated")
    bench.add_argument("--num-fewshot", type=int, help="few-shot examples per question (default: the task's)")
    bench.add_argument("--limit", type=float, help="questions per task (below 1: a fraction of them)")
    bench.add_argument("--include-path", action="append", default=[], metavar="DIR",
                       help="a folder of your own lm-eval task YAML files (repeatable)")
    bench.add_argument("--apply-chat-template", action="store_true",
                       help="render each question with the model's chat template (for chat models)")
    bench.add_argument("--batch-size", type=int, default=8, help="the harness's batch size (default 8)")


def request_from_args(args: argparse.Namespace):
    """The EvalRequest the command line asks for."""
    from tunelab.config.schema import parse_overrides
    from tunelab.evaluate import BenchmarkSettings, EvalRequest

    targets, overrides = _split_words([*([args.recipe] if args.recipe else []), *(args.compare or [])],
                                      list(args.overrides or []))
    keys = parse_overrides(overrides)
    for key, value in (("max_samples", args.max_samples), ("dataset_dir", args.dataset_dir)):
        if value is not None:
            keys[key] = value
    bench = None
    if args.tasks:
        limit = int(args.limit) if args.limit is not None and args.limit >= 1 else args.limit
        bench = BenchmarkSettings(tasks=_names(args.tasks), num_fewshot=args.num_fewshot, limit=limit,
                                  include_path=list(args.include_path),
                                  apply_chat_template=args.apply_chat_template, batch_size=args.batch_size)
    return EvalRequest(targets=targets, predict=args.predict, perplexity=args.perplexity, benchmark=bench,
                       datasets=_names(args.dataset), keys=keys, save_dir=args.save_dir)


def _split_words(words: list[str], overrides: list[str]) -> tuple[list[str], list[str]]:
    """key=value words that argparse put among the targets belong to the overrides."""
    from pathlib import Path

    targets = []
    for word in words:
        if "=" in word and not Path(word).exists():
            overrides.append(word)
        else:
            targets.append(word)
    return targets, overrides


def _names(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def run(args: argparse.Namespace) -> int:
    from tunelab.evaluate import format_table, run_evaluations

    request = request_from_args(args)

    def log(line: str) -> None:
        print(f"tunelab: {line}", file=sys.stderr, flush=True)

    def saved(record) -> None:
        log(f"{record.name} of {record.label}: written to {record.path}")

    records = run_evaluations(request, log, saved)
    if args.json:
        print(json.dumps([asdict(r) for r in records], indent=2, ensure_ascii=False, default=str))
    else:
        print(format_table(records))
    return 0
