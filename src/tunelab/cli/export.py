"""``tunelab export [recipe] [key=value ...] [--model B] [--adapter A[,B]] [--out DIR] ...``."""

from __future__ import annotations

import argparse

from tunelab.cli.common import add_recipe_arguments, keys_epilog, load_recipe

DESCRIPTION = """Write a standalone model: adapters merged into the base, sharded safetensors,
config, generation config, tokenizer and chat template, an Ollama Modelfile, optionally GGUF.

Adapters trained on a 4/8-bit base (QLoRA) are merged onto the full-precision base, reloaded
without quantization. The export is reloaded and its logits compared with base+adapter before
it is moved into place: a failed export leaves nothing at --out (nor inside a run or the base
model: such an --out is refused). The chat template is the one the run saved with its
tokenizer; a recipe's template=NAME that differs is ignored with a warning unless
--override-template (export_template_override) is given.

examples:
  tunelab export recipe.yaml
  tunelab export --adapter saves/tiny-chat/lora/sft-1 --out merged/
  tunelab export --model BASE --adapter saves/run/checkpoint-100 --out merged/ --max-shard-size 1.5GB
  tunelab export --adapter saves/run --out merged/ --gguf f16,q8_0"""

# flag destination -> recipe key
_FLAG_KEYS = {
    "model": "model_name_or_path", "adapter": "adapter_name_or_path", "out": "export_dir",
    "max_shard_size": "export_size", "dtype": "export_dtype", "device": "export_device",
    "gguf": "export_gguf", "hub_model_id": "export_hub_model_id",
    "tolerance": "export_verify_tolerance",
}
# switch destination -> (recipe key, value when the switch is given)
_SWITCH_KEYS = {
    "no_verify": ("export_verify", False), "overwrite": ("export_overwrite", True),
    "legacy_format": ("export_legacy_format", True), "no_modelfile": ("export_modelfile", False),
    "override_template": ("export_template_override", True),
}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("export", help="merge adapters and write a standalone model (+GGUF)",
                            description=DESCRIPTION, epilog=keys_epilog(("model", "export")),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add_recipe_arguments(parser)
    parser.add_argument("--model", help="base model (folder, hub id, tunelab/tiny-chat) or a full run")
    parser.add_argument("--adapter", help="adapter folder(s) to merge, comma-separated, in order")
    parser.add_argument("--out", help="folder to write (export_dir)")
    parser.add_argument("--max-shard-size", help="largest shard: 2, 1.88 (GB) or 500MB, 2GB")
    parser.add_argument("--dtype", choices=("auto", "bfloat16", "float16", "float32"),
                        help="weight dtype (default: the base model's)")
    parser.add_argument("--device", choices=("cpu", "auto"), help="where to merge")
    parser.add_argument("--gguf", help="also write GGUF: f16, q8_0, f32, bf16 (comma-separated)")
    parser.add_argument("--hub-model-id", help="also upload to this hub repository")
    parser.add_argument("--tolerance", type=float, help="verification tolerance (relative)")
    parser.add_argument("--no-verify", action="store_true", help="skip the reload-and-compare check")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    parser.add_argument("--legacy-format", action="store_true", help="write .bin instead of safetensors")
    parser.add_argument("--no-modelfile", action="store_true", help="skip the Ollama Modelfile")
    parser.add_argument("--override-template", action="store_true",
                        help="let template=NAME replace the template the run was trained with")
    parser.set_defaults(func=run)


def flag_overrides(args: argparse.Namespace) -> dict[str, object]:
    """Recipe keys set by the command-line flags (flags win over the recipe)."""
    extra: dict[str, object] = {}
    for dest, key in _FLAG_KEYS.items():
        value = getattr(args, dest, None)
        if value is not None:
            extra[key] = value
    for dest, (key, value) in _SWITCH_KEYS.items():
        if getattr(args, dest, False):
            extra[key] = value
    return extra


def run(args: argparse.Namespace) -> int:
    from tunelab.export import run_export

    cfg = load_recipe(args, extra=flag_overrides(args))
    run_export(cfg)
    return 0
