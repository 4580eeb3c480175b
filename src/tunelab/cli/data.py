"""``tunelab data``: list registered datasets, validate them row by row, preview what is trained."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from types import SimpleNamespace

from tunelab.data.kinds import sample_kind
from tunelab.train.stages import IMPLEMENTED_STAGES

DEFAULT_PREVIEW_MODEL = "tunelab/tiny-chat"


def register(subparsers) -> None:
    """Add ``data`` with its ``list`` / ``validate`` / ``preview`` actions."""
    parser = subparsers.add_parser(
        "data", help="list, validate and preview datasets from dataset_info.json",
        description="Inspect datasets registered in dataset_info.json (LLaMA-Factory format).")
    actions = parser.add_subparsers(dest="data_action", metavar="<action>")

    listing = actions.add_parser("list", help="list the registered datasets")
    _common(listing, stage=False)

    validate = actions.add_parser(
        "validate", help="check every row; exit 1 if rows would be skipped, 2 if a dataset is unusable",
        description="Check every row as `tunelab train` reads it. Exit 0: all rows usable; 1: some rows "
        "would be skipped (listed); 2: a dataset cannot be trained on (unreadable file, no usable row).")
    validate.add_argument("names", nargs="*", metavar="NAME",
                          help="dataset names, and key=value overrides (dataset=A,B and eval_dataset=C "
                               "name datasets too, as in a recipe)")
    _common(validate)
    validate.set_defaults(overrides=[])  # key=value words given after an option land here

    preview = actions.add_parser("preview", help="show rows as parsed, rendered and trained")
    preview.add_argument("name", metavar="NAME", help="dataset name")
    preview.add_argument("overrides", nargs="*", metavar="key=value",
                         help="recipe keys, e.g. cutoff_len=512 train_on_prompt=true stage=pt")
    preview.add_argument("--rows", type=int, default=3, help="how many rows to show (default: 3)")
    preview.add_argument("--model", help="model folder or built-in name whose tokenizer renders the rows "
                         f"(default: model_name_or_path, else {DEFAULT_PREVIEW_MODEL})")
    preview.add_argument("--no-model", action="store_true", help="show the parsed conversations only")
    preview.add_argument("--template", help="chat template name (default: the tokenizer's own)")
    _common(preview)
    parser.set_defaults(func=run, data_parser=parser)


def _common(parser: argparse.ArgumentParser, stage: bool = True) -> None:
    parser.add_argument("--dataset-dir", default=None, help="folder holding your dataset_info.json (default: data); names it does "
                        "not register come from the packaged demo datasets")
    if stage:
        kinds = ", ".join(f"{stage}: {sample_kind(stage)}" for stage in IMPLEMENTED_STAGES)
        parser.add_argument("--stage", choices=IMPLEMENTED_STAGES, default=None,
                            help=f"read the rows as this stage does ({kinds}; default: sft)")


def run(args: argparse.Namespace) -> int:
    action = {"list": _list, "validate": _validate, "preview": _preview}.get(args.data_action)
    if action is None:
        args.data_parser.print_help()
        return 2
    return action(args)


def _settings(args: argparse.Namespace, overrides: list[str]) -> SimpleNamespace:
    """data / model sections and the stage. Plain flags skip the full recipe loader, which imports
    transformers' TrainingArguments (seconds) only to validate keys nobody gave."""
    from tunelab.config.data import DataArgs
    from tunelab.config.model import ModelArgs

    stage = getattr(args, "stage", None)
    if overrides:
        from tunelab.config import load_config

        pairs = list(overrides) + [f"{k}={v}" for k, v in (("dataset_dir", args.dataset_dir),
                                                          ("stage", stage)) if v]
        cfg = load_config(None, pairs)
        data, model, rl, stage = cfg.data, cfg.model, cfg.rl, cfg.method.stage
    else:
        data, model, rl = DataArgs(dataset_dir=args.dataset_dir or "data"), ModelArgs(), None
    if getattr(args, "template", None):
        data.template = args.template
    return SimpleNamespace(data=data, model=model, rl=rl, stage=stage or "sft")


def _list(args: argparse.Namespace) -> int:
    from tunelab.data.registry import available_datasets, registry_path

    cfg = _settings(args, [])
    registry = available_datasets(cfg.data.dataset_dir)
    width = max((len(n) for n in registry), default=4)
    for name, spec in sorted(registry.items()):
        where = spec.file_name or spec.hf_hub_url or spec.ms_hub_url or spec.script_url or "?"
        origin = "demo" if spec.registry_dir else "yours"
        print(f"{name:{width}}  {spec.formatting:8}  {origin:5}  {where}")
    own = registry_path(cfg.data.dataset_dir)
    print(f"{len(registry)} datasets: yours from {own}"
          f"{'' if own.is_file() else ' (no such file)'}, then TuneLab's packaged demos")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from tunelab.cli import EXIT_OK, EXIT_ROWS_SKIPPED
    from tunelab.data.report import load_samples, no_valid_rows_error, required_columns

    words = [*args.names, *args.overrides]
    cfg = _settings(args, [n for n in words if "=" in n])
    names = _validated_names([n for n in words if "=" not in n], cfg.data)
    _, reports = load_samples(cfg.data, names, cfg.stage, strict=False,
                              required=required_columns(cfg, cfg.stage))
    for report in reports:
        print(report.format(limit=None))
    unusable = [r for r in reports if not r.usable]
    if unusable:  # the same verdict, and error, that `tunelab train` gives
        raise no_valid_rows_error(unusable[0])
    bad = [r.dataset for r in reports if not r.ok]
    print(f"problems in: {', '.join(bad)}" if bad else "all rows are usable")
    return EXIT_ROWS_SKIPPED if bad else EXIT_OK


def _validated_names(names: list[str], data) -> list[str]:
    """The positional names, then the ``dataset`` / ``eval_dataset`` overrides, each once;
    ConfigError when nothing names a dataset (checking nothing must not pass)."""
    from tunelab.errors import ConfigError

    found = list(dict.fromkeys([*names, *(data.dataset or []), *(data.eval_dataset or [])]))
    if not found:
        raise ConfigError("no dataset to validate", key="dataset", where="key 'dataset'",
                          hint="name one: `tunelab data validate alpaca_en_demo` or "
                               "`tunelab data validate dataset=NAME`; `tunelab data list` shows them")
    return found


def _preview(args: argparse.Namespace) -> int:
    from tunelab.data.preview import format_preview, preview_sample
    from tunelab.data.readers import read_rows
    from tunelab.data.registry import resolve
    from tunelab.data.convert import RowError, to_sample

    cfg = _settings(args, args.overrides)
    stage = cfg.stage
    tokenizer, options = _preview_tokenizer(args, cfg, stage)
    spec = resolve([args.name], cfg.data.dataset_dir)[0]
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    for location, row in read_rows(spec, cfg.data.dataset_dir, max_samples=args.rows):
        try:
            sample = to_sample(row, spec, location, stage, cfg.data.placeholders)
        except RowError as exc:
            print(f"=== {location}\n--- skipped: {exc.reason}\n")
            continue
        print(format_preview(location, preview_sample(sample, tokenizer, options, colour)) + "\n")
    return 0


def _preview_tokenizer(args: argparse.Namespace, cfg, stage: str):
    """The tokenizer (template applied) and encoding options, or (None, None) without a model."""
    model = args.model or cfg.model.model_name_or_path
    if model is None and importlib.util.find_spec("tunelab.testing") is not None:
        model = DEFAULT_PREVIEW_MODEL
    if args.no_model or model is None:
        return None, None
    from tunelab.data.pipeline import encoding_options
    from tunelab.data.templates import apply_template
    from tunelab.model.loader import load_tokenizer

    cfg.model.model_name_or_path = model
    tokenizer = load_tokenizer(cfg.model)
    if stage != "pt":
        info = apply_template(tokenizer, cfg.data.template, cfg.data.default_system)
        print(f"model: {model}   template: {info.name}   stop: {', '.join(info.stop_strings)}\n")
        if info.note:
            print(f"tunelab: note: {info.note}", file=sys.stderr)
    return tokenizer, encoding_options(cfg.data, stage)
