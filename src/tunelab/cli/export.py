"""``tunelab export [recipe] [key=value ...] [--model B] [--adapter A[,B]] [--out DIR] ...``."""

from __future__ import annotations

import argparse

from tunelab.cli.common import (KeyFlag, add_key_flags, add_recipe_arguments, flag_values,
                                keys_epilog, load_recipe)

DESCRIPTION = """Write a standalone model: adapters merged into the base, sharded safetensors,
config, generation config, tokenizer and chat template, an Ollama Modelfile, optionally GGUF.

Adapters trained on a 4/8-bit base (QLoRA) are merged onto the full-precision base, reloaded
without quantization. The export is reloaded and its logits compared with base+adapter before
it is moved into place: a failed export leaves nothing at --out (nor inside a run or the base
model: such an --out is refused). The chat template is the one the run saved with its
tokenizer; a recipe's template=NAME that differs is ignored with a warning unless
--override-template (export_template_override) is given.

A reward model (stage rm: LoRA/DoRA/QLoRA with its score head, freeze, full) is exported as a
full sequence-classification model (num_labels 1, pad token set), verified on its rewards of a
few texts; it gets no Modelfile, and --gguf is refused. Score it with `tunelab score OUT`.

examples:
  tunelab export recipe.yaml
  tunelab export --adapter saves/tiny-chat/lora/sft-1 --out merged/
  tunelab export --model BASE --adapter saves/run/checkpoint-100 --out merged/ --max-shard-size 1.5GB
  tunelab export --adapter saves/run --out merged/ --gguf f16,q8_0
  tunelab export --adapter saves/tiny-chat/lora/rm --out rm-merged/     a reward model (stage rm)"""

FLAGS = (
    KeyFlag("--model", "model_name_or_path",
            note="base model (folder, hub id, tunelab/tiny-chat) or a full run"),
    KeyFlag("--adapter", "adapter_name_or_path", note="adapter folder(s) to merge, comma-separated, in order"),
    KeyFlag("--out", "export_dir"),
    KeyFlag("--max-shard-size", "export_size"),
    KeyFlag("--dtype", "export_dtype"),
    KeyFlag("--device", "export_device"),
    KeyFlag("--gguf", "export_gguf"),
    KeyFlag("--hub-model-id", "export_hub_model_id"),
    KeyFlag("--tolerance", "export_verify_tolerance"),
    KeyFlag("--no-verify", "export_verify", value=False, note="skip the reload-and-compare check"),
    KeyFlag("--overwrite", "export_overwrite", value=True),
    KeyFlag("--legacy-format", "export_legacy_format", value=True),
    KeyFlag("--no-modelfile", "export_modelfile", value=False, note="skip the Ollama Modelfile"),
    KeyFlag("--override-template", "export_template_override", value=True),
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("export", help="merge adapters and write a standalone model (+GGUF)",
                            description=DESCRIPTION,
                            epilog=keys_epilog(("model", "export"), keys=("template",)),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add_recipe_arguments(parser)
    add_key_flags(parser, FLAGS)
    parser.set_defaults(func=run)


def flag_overrides(args: argparse.Namespace) -> dict[str, object]:
    """Recipe keys set by the command-line flags (flags win over the recipe)."""
    return flag_values(args, FLAGS)


def run(args: argparse.Namespace) -> int:
    from tunelab.export import run_export

    cfg = load_recipe(args, extra=flag_overrides(args))
    run_export(cfg)
    return 0
