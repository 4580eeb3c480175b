"""``tunelab export``: merge, shard, verify, add Modelfile/GGUF, move into place, push.

Order matters: everything that can fail because of the recipe (destination, source, sizes, GGUF
support) is checked before any weights are loaded, and nothing appears at ``export_dir`` until
the folder is complete and verified.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from tunelab.export.errors import ExportError
from tunelab.export.merge import fix_generation_eos, work_dtype_name
from tunelab.export.size import format_size, parse_size
from tunelab.export.source import ExportSource, read_model_config, resolve_source
from tunelab.export.staging import COMPLETE_MARKER, Staging, check_destination

if TYPE_CHECKING:
    from tunelab.config.schema import Config
    from tunelab.export.verify import Probe


@dataclass
class ExportResult:
    """Where the export went and what was checked."""

    export_dir: Path
    dtype: str
    weight_files: list[str]
    verification: dict[str, Any] | None = None
    gguf: list[dict[str, Any]] = field(default_factory=list)
    modelfile_family: str | None = None
    hub_url: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class _Plan:
    source: ExportSource
    target: Path
    shard_bytes: int
    dtype: str
    device: str
    gguf_types: list[str]


def run_export(cfg: "Config", log: Callable[[str], None] = print) -> ExportResult:
    """Export the model the recipe describes into ``export_dir`` and return what was done.

    Raises ConfigError/ModelError for a bad recipe (before loading weights) and ExportError when
    verification or the GGUF read-back fails (nothing is left at ``export_dir`` then).
    """
    plan = _plan(cfg)
    for note in plan.source.notes:
        log(f"note: {note}")
    tokenizer = _load_tokenizer(cfg, plan.source, log)
    with Staging(plan.target, log) as staging:
        result = _write_export(cfg, plan, tokenizer, staging.path, log)
        _write_info(staging.path, cfg, plan, result)
        staging.commit()
    log(f"export complete: {plan.target}")
    if cfg.export.export_hub_model_id:
        from tunelab.export.hub import push_to_hub

        log(f"uploading to {cfg.export.export_hub_model_id} ...")
        result.hub_url = push_to_hub(plan.target, cfg.export.export_hub_model_id)
        log(f"uploaded: {result.hub_url}")
    return result


def _plan(cfg: "Config") -> _Plan:
    """Every recipe check that needs no weights: destination, source, size, dtype, GGUF support."""
    from tunelab.export.merge import export_dtype_name
    from tunelab.export.verify import check_adapters_finite
    from tunelab.model.loader import pick_device

    args = cfg.export
    source = resolve_source(cfg)
    if source.reward:
        from tunelab.export.reward import check_reward_options

        check_reward_options(cfg)
    target = check_destination(args.export_dir, args.export_overwrite, _protected(source))
    shard_bytes = parse_size(args.export_size)
    check_adapters_finite(source.adapters)
    gguf_types = [t for t in (args.export_gguf or []) if t != "none"]
    if gguf_types:
        from tunelab.export.gguf_llama import check_gguf_supported

        check_gguf_supported(read_model_config(source.base_path))
    return _Plan(source=source, target=target, shard_bytes=shard_bytes,
                 dtype=export_dtype_name(args.export_dtype, source),
                 device=pick_device(args.export_device, "export_device"), gguf_types=gguf_types)


def _protected(source: ExportSource) -> dict[str, str]:
    """The folders an export must never write into or around: its own inputs."""
    folders = {"base model": source.base_path}
    for adapter in source.adapters:
        folders[f"adapter {adapter}"] = adapter
    return folders


def _load_tokenizer(cfg: "Config", source: ExportSource, log: Callable[[str], None]) -> Any:
    """The tokenizer the model was trained with (from the run when it saved one), with its
    template: a recipe's ``template`` replaces a trained template only with
    ``export_template_override``."""
    import dataclasses

    from tunelab.model import load_tokenizer

    model_args = dataclasses.replace(cfg.model, model_name_or_path=source.tokenizer_path)
    tokenizer = load_tokenizer(model_args)
    if cfg.data.template:
        _apply_recipe_template(cfg, source, tokenizer, log)
    return tokenizer


def _apply_recipe_template(cfg: "Config", source: ExportSource, tokenizer: Any,
                           log: Callable[[str], None]) -> None:
    from tunelab.data.templates import apply_template

    trained = tokenizer.chat_template if source.trained_tokenizer else None
    apply_template(tokenizer, cfg.data.template)
    if not trained or tokenizer.chat_template == trained:
        return
    if cfg.export.export_template_override:
        log(f"warning: template={cfg.data.template} replaces the chat template the model was "
            f"trained with ({source.tokenizer_path}), as export_template_override asks")
        return
    tokenizer.chat_template = trained
    log(f"warning: keeping the chat template the model was trained with ({source.tokenizer_path}); "
        f"the recipe's template={cfg.data.template} differs and is ignored. Set "
        "export_template_override: true (--override-template) to export with it anyway")


@dataclass
class _Merged:
    model: Any
    reference: list[Any]
    merge_rel_diff: float | None


def _write_export(cfg: "Config", plan: _Plan, tokenizer: Any, folder: Path,
                  log: Callable[[str], None]) -> ExportResult:
    from tunelab.export.save import save_model_files
    from tunelab.export.verify import make_probe, saved_weights_match

    args = cfg.export
    probe = make_probe(tokenizer, plan.source.reward, enabled=args.export_verify)
    merged = _merged_model(cfg, plan, probe, tokenizer, log)
    if fix_generation_eos(merged.model, tokenizer):
        log(f"generation_config: added {tokenizer.eos_token} (id {tokenizer.eos_token_id}) to "
            "eos_token_id so generate() stops where the chat template ends a turn")
    log(f"writing {plan.dtype} weights in shards of at most {format_size(plan.shard_bytes)}"
        f"{' (.bin)' if args.export_legacy_format else ''}")
    files = save_model_files(merged.model, tokenizer, folder, plan.shard_bytes,
                             args.export_legacy_format)
    weights_match = saved_weights_match(merged.model, folder) if args.export_verify else True
    merged.model = None
    _release_memory()
    result = ExportResult(export_dir=plan.target, dtype=plan.dtype, weight_files=files,
                          notes=list(plan.source.notes))
    if args.export_verify:
        _verify(cfg, plan, folder, merged, probe, weights_match, result, log)
    _write_extras(cfg, plan, tokenizer, folder, result, log)
    return result


def _verify(cfg: "Config", plan: _Plan, folder: Path, merged: _Merged, probe: "Probe",
            weights_match: bool, result: ExportResult, log: Callable[[str], None]) -> None:
    """Reload the folder, compare with the reference, and raise if any check failed."""
    from tunelab.export.verify import DEFAULT_TOLERANCE, tolerance_for, verify_export

    report = verify_export(str(folder), merged.reference, probe,
                           tolerance_for(plan.dtype, cfg.export.export_verify_tolerance), plan.device)
    report.merge_rel_diff, report.weights_match = merged.merge_rel_diff, weights_match
    if work_dtype_name(plan.dtype, plan.device) != "float32":
        # Merged in the export dtype (on a GPU): rounding is part of the merge check too.
        report.merge_tolerance = DEFAULT_TOLERANCE[plan.dtype]
    log(report.describe())
    result.verification = report.to_dict()
    if not report.passed:
        raise ExportError(report.describe(), where=f"export of {plan.source.base_name}",
                          hint="nothing was written to export_dir; raise export_verify_tolerance "
                               "only if the export-vs-reference difference is expected")


def _release_memory() -> None:
    """Free the merged model before the export is reloaded: both need not fit at once."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _merged_model(cfg: "Config", plan: _Plan, probe: "Probe", tokenizer: Any,
                  log: Callable[[str], None]) -> _Merged:
    """The model to save (adapters merged, cast to the export dtype), the reference outputs of
    base+adapter on the probe, and how far the merged (not yet cast) model is from them."""
    from tunelab.export.merge import cast_for_export, load_unquantized, merge_adapters
    from tunelab.export.verify import check_finite

    source = plan.source
    work = work_dtype_name(plan.dtype, plan.device)
    kind = ", a reward model with its score head" if source.reward else ""
    log(f"loading {source.base_name} ({work}, {plan.device}, unquantized{kind})")
    model = load_unquantized(cfg, source.base_path, work, plan.device,
                             head="reward" if source.reward else "causal_lm")
    if source.reward:
        from tunelab.export.reward import set_pad_token

        set_pad_token(model, tokenizer)  # before the reference is scored: it reads the same token
    reference: list[Any] = []

    def keep_reference(candidate: Any) -> None:
        if probe.inputs:
            reference.extend(probe.outputs(candidate))

    merge_diff = None
    if source.adapters:
        log(f"merging {len(source.adapters)} adapter(s): {', '.join(source.adapters)}")
        model = merge_adapters(model, source.adapters, keep_reference)
        if probe.inputs:
            merge_diff = probe.compare(reference, probe.outputs(model), 1.0).max_rel_diff
    else:
        log("no adapters: exporting the model's own weights (freeze/full run or a base model)")
        keep_reference(model)
    check_finite(list(model.state_dict().items()), f"the model merged from {source.base_name}",
                 source.adapters[-1] if source.adapters else source.base_path)
    return _Merged(cast_for_export(model, plan.dtype), reference, merge_diff)


def _write_extras(cfg: "Config", plan: _Plan, tokenizer: Any, folder: Path, result: ExportResult,
                  log: Callable[[str], None]) -> None:
    """GGUF files (each read back and checked) and the Ollama Modelfile."""
    from tunelab.export.gguf_llama import write_gguf

    first_gguf = None
    for qtype in plan.gguf_types:
        name = f"{plan.target.name}-{qtype}.gguf"
        summary = write_gguf(folder, folder / name, qtype, tokenizer, plan.target.name)
        first_gguf = first_gguf or name
        log(f"wrote {name}: {summary.tensor_count} tensors, read back and checked")
        for note in summary.notes:
            if note not in result.notes:
                log(f"note: {note}")
                result.notes.append(note)
        result.gguf.append({"file": name, "type": qtype, "tensors": summary.tensor_count})
    if cfg.export.export_modelfile and plan.source.reward:
        log("no Modelfile: a reward model scores texts, Ollama runs chat models")
    elif cfg.export.export_modelfile:
        from tunelab.export.modelfile import write_modelfile

        result.modelfile_family = write_modelfile(folder, tokenizer, first_gguf)
        log(f"wrote Modelfile ({result.modelfile_family or 'template not translated'})")


def _write_info(folder: Path, cfg: "Config", plan: _Plan, result: ExportResult) -> None:
    """export_info.json: what was exported, how, and how it checked out (written last)."""
    info = {
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "base_model": plan.source.base_name,
        "adapters": plan.source.adapters,
        "adapter_trained_bits": plan.source.trained_bits,
        "reward_model": plan.source.reward,
        "dtype": plan.dtype,
        "max_shard_bytes": plan.shard_bytes,
        "weight_files": result.weight_files,
        "verification": result.verification,
        "gguf": result.gguf,
        "modelfile_template": result.modelfile_family,
        "notes": result.notes,
        "config_given": cfg.given,
    }
    (folder / COMPLETE_MARKER).write_text(json.dumps(info, indent=2, default=str) + "\n")
