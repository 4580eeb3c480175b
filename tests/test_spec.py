"""The recipe spec is the one declaration of every key: no key twice, and every other place that
states a key's range or choices (request schemas, sampling checks, CLI flags, transformers
itself) agrees with it."""

import dataclasses
import json
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from tunelab.config import SECTIONS, Config, KeySpec, build_config, describe_keys, spec_for
from tunelab.config.spec import TRAINING_SECTION
from tunelab.config.training import OWNED_ELSEWHERE, TRAINING_DEFAULTS
from tunelab.data.kinds import SAMPLE_KINDS
from tunelab.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TYPES = {"bool", "int", "float", "str", "list[str]", "dict"}
GROUPS = {"model", "data", "method", "lora", "freeze", "training", "output", "infer", "export",
          "preference", "rewards", "online"}
# Request fields that carry a recipe key's bounds under another name.
REQUEST_KEYS = {"max_tokens": "max_new_tokens", "max_completion_tokens": "max_new_tokens"}
# Request fields that are no recipe key: how many answers a request wants, the legacy endpoint's
# bound on prompt plus answer, and one request's sampling seed (the recipe's `seed` is the
# training seed, a different setting).
REQUEST_ONLY = {"n", "max_length", "seed"}


def _declared_names():
    for _, cls in [*SECTIONS.items(), TRAINING_SECTION]:
        for f in dataclasses.fields(cls):
            yield f.name
            yield from f.metadata.get("aliases", ())


def test_no_key_or_alias_is_declared_twice():
    names = list(_declared_names())
    twice = sorted({n for n in names if names.count(n) > 1})
    assert twice == []
    assert len(describe_keys()) == len({s.key for s in describe_keys()}) == len(set(describe_keys()))


def test_every_key_has_complete_metadata():
    json.dumps([dataclasses.asdict(spec) for spec in describe_keys()])  # the board ships it as JSON
    for spec in describe_keys():
        assert isinstance(spec, KeySpec)
        assert spec.type in TYPES, spec
        assert spec.group in GROUPS, spec
        assert spec.help and spec.help_zh, f"{spec.key} lacks help"
        assert re.search(r"[\u4e00-\u9fff]", spec.help_zh), f"{spec.key}: help_zh is not Chinese"
        assert spec.violation(spec.default) is None, f"{spec.key}: default breaks its own rule"
        for other, allowed in (spec.when or {}).items():
            other_spec = spec_for(other)
            # a stage's keys may name stages still to come (data.kinds lists every stage)
            known = set(SAMPLE_KINDS) if other == "stage" else set(other_spec.choices or allowed)
            assert set(allowed) <= known, spec


def test_hf_training_keys_users_touch_most_are_declared():
    wanted = ["learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
              "per_device_eval_batch_size", "gradient_accumulation_steps", "lr_scheduler_type",
              "warmup_steps", "weight_decay", "max_grad_norm", "logging_steps", "save_steps",
              "save_total_limit", "save_strategy", "eval_strategy", "eval_steps", "bf16", "fp16",
              "seed", "optim", "dataloader_num_workers", "report_to"]
    for key in wanted:
        assert spec_for(key).section == "training" and spec_for(key).group == "training"
    assert spec_for("warmup_ratio").key == "warmup_steps"
    assert spec_for("evaluation_strategy").key == "eval_strategy"
    with pytest.raises(KeyError):
        spec_for("lora_rnak")


def test_training_defaults_are_ours_where_we_differ_and_hf_otherwise():
    from transformers import TrainingArguments

    hf = {f.name: f for f in dataclasses.fields(TrainingArguments)}
    for spec in describe_keys():
        if spec.section != "training":
            continue
        assert spec.key in hf, f"{spec.key} is not a TrainingArguments key"
        expected = TRAINING_DEFAULTS.get(spec.key, hf[spec.key].default)
        assert spec.default == expected, spec.key


def test_section_keys_that_hf_also_has_are_owned_explicitly():
    # Such a key is ours: train/ must pass it on, so it has to be listed as owned elsewhere.
    from transformers import TrainingArguments

    hf = {f.name for f in dataclasses.fields(TrainingArguments)}
    shared = {s.key for s in describe_keys() if s.section != "training"} & hf
    assert shared <= OWNED_ELSEWHERE, shared - OWNED_ELSEWHERE


def test_training_choices_are_transformers_own():
    from transformers.trainer_utils import IntervalStrategy, SaveStrategy, SchedulerType
    from transformers.training_args import OptimizerNames

    assert set(spec_for("lr_scheduler_type").choices) == {s.value for s in SchedulerType}
    assert set(spec_for("optim").choices) == {s.value for s in OptimizerNames}
    assert set(spec_for("save_strategy").choices) == {s.value for s in SaveStrategy}
    assert set(spec_for("eval_strategy").choices) == {s.value for s in IntervalStrategy}


def _schema_bounds(prop: dict) -> dict:
    # pydantic writes `int | None` bounds inside anyOf; read them where they are.
    for option in prop.get("anyOf", [prop]):
        found = {k: option[k] for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
                 if k in option}
        if found:
            return found
    return {}


def _spec_bounds(spec: KeySpec) -> dict:
    bounds = {}
    if spec.min is not None:
        bounds["exclusiveMinimum" if spec.min_exclusive else "minimum"] = spec.min
    if spec.max is not None:
        bounds["exclusiveMaximum" if spec.max_exclusive else "maximum"] = spec.max
    return bounds


@pytest.mark.parametrize("model_name", ["ChatCompletionRequest", "CompletionRequest",
                                        "LegacyChatRequest"])
def test_request_schema_bounds_equal_the_spec(model_name):
    from tunelab.serve import schemas

    props = getattr(schemas, model_name).model_json_schema()["properties"]
    checked = 0
    for field, prop in props.items():
        bounds = _schema_bounds(prop)
        key = REQUEST_KEYS.get(field, field)
        if field in REQUEST_ONLY or not bounds and key not in {s.key for s in describe_keys()}:
            continue
        assert bounds == _spec_bounds(spec_for(key)), field
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize("key", ["max_new_tokens", "temperature", "top_p", "top_k",
                                 "repetition_penalty"])
def test_sampling_params_accept_exactly_the_spec_range(key):
    from tunelab.infer.params import SamplingParams

    spec = spec_for(key)
    step = 1 if spec.type == "int" else 1e-6
    base = SamplingParams()
    for bound, exclusive, outside in ((spec.min, spec.min_exclusive, -step),
                                      (spec.max, spec.max_exclusive, step)):
        if bound is None:
            continue
        value = type(getattr(base, key))(bound)
        if exclusive:
            with pytest.raises(ConfigError, match=key):
                base.updated(**{key: value})
        else:
            assert getattr(base.updated(**{key: value}), key) == value
        with pytest.raises(ConfigError, match=key):
            base.updated(**{key: value + outside})


def test_stage_offers_only_implemented_stages_from_one_registry():
    from tunelab.train import stages

    assert spec_for("stage").choices == stages.IMPLEMENTED_STAGES
    definitions = [p for p in (ROOT / "src").rglob("*.py")
                   if re.search(r"^IMPLEMENTED_STAGES\b.*=", p.read_text(), re.M)]
    assert [p.relative_to(ROOT / "src").as_posix() for p in definitions] == \
        ["tunelab/train/stages/__init__.py"]
    with pytest.raises(ConfigError, match="stage.*one of: " + ", ".join(stages.IMPLEMENTED_STAGES)):
        build_config({"stage": "rlhf"})


def test_template_choices_are_the_templates_data_can_install():
    from tunelab.data.templates import (LLAMAFACTORY_TEMPLATES, OWN_TEMPLATE_NAMES, TEMPLATE_NAMES,
                                        TOKENIZER, template_source)

    choices = spec_for("template").choices
    assert choices == tuple(TEMPLATE_NAMES)
    for name in choices:
        # a LLaMA-Factory name renders as one of ours, or as the tokenizer's own template
        target = LLAMAFACTORY_TEMPLATES[name][0] if name not in OWN_TEMPLATE_NAMES else name
        if target != TOKENIZER:
            assert template_source(target), name
    assert build_config({"template": choices[-1]}).data.template == choices[-1]
    with pytest.raises(ConfigError, match="template"):
        build_config({"template": "no-such-template"})


def test_applies_follows_when():
    lora_rank = spec_for("lora_rank")
    assert lora_rank.applies({}) is True  # finetuning_type defaults to lora
    assert lora_rank.applies({"finetuning_type": "full"}) is False
    assert spec_for("freeze_trainable_layers").applies({"finetuning_type": "freeze"}) is True
    assert spec_for("vllm_maxlen").applies({"infer_backend": "huggingface"}) is False
    assert spec_for("learning_rate").applies({"finetuning_type": "full"}) is True


def test_config_sections_are_typed_attributes():
    assert "__getattr__" not in vars(Config)
    hints = typing.get_type_hints(Config)
    for name, cls in SECTIONS.items():
        assert hints[name] is cls, name
    cfg = build_config({"lora_rank": 4})
    assert isinstance(cfg.method, SECTIONS["method"]) and cfg.method.lora_rank == 4
    assert list(cfg.sections) == list(SECTIONS)


def _help(*command: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "tunelab", *command, "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_train_help_shows_groups_types_defaults_ranges_and_choices():
    text = _help("train")
    for group in ("[model]", "[data]", "[method]", "[lora]", "[freeze]", "[training]", "[output]"):
        assert group in text
    assert "lora_rank (int, default: 8) >= 1 when finetuning_type=lora" in text
    assert "lora_dropout (float, default: 0.0) in [0, 1) when finetuning_type=lora" in text
    assert "learning_rate (float, default: 5e-05) >= 0" in text
    assert "lr_scheduler_type (str, default: 'linear') {linear, cosine," in text
    from tunelab.train.stages import IMPLEMENTED_STAGES

    assert f"stage (str, default: 'sft') {{{', '.join(IMPLEMENTED_STAGES)}}}" in text
    assert "warmup_steps (float, default: 0.0) >= 0 alias warmup_ratio" in text
    assert "save_total_limit (int|null, default: None) >= 1" in text


def test_command_help_lists_the_keys_the_command_uses():
    export = _help("export")
    for spec in describe_keys():
        if spec.group in ("model", "export"):
            assert f"\n  {spec.key} (" in export, spec.key
    assert "learning_rate (" not in export and "[lora]" not in export
    assert "--dtype {auto,bfloat16,float16,float32}" in export
    assert "(export_verify_tolerance, > 0)" in " ".join(export.split())
    chat = _help("chat")
    assert "top_p (float, default: 0.7) in (0, 1]" in chat and "template (str|null" in chat
    assert "cutoff_len" not in chat


def test_command_flags_take_choices_from_the_spec():
    from tunelab.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    export_flags = {a.dest: a for a in sub["export"]._actions}
    assert tuple(export_flags["dtype"].choices) == spec_for("export_dtype").choices
    assert tuple(export_flags["device"].choices) == spec_for("export_device").choices
    args = sub["export"].parse_args(["--out", "x", "--no-verify", "--dtype", "float16"])
    from tunelab.cli.export import flag_overrides

    assert flag_overrides(args) == {"export_dir": "x", "export_verify": False,
                                    "export_dtype": "float16"}
