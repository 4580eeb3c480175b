"""How a trained model is exported: merged, sharded, verified, and handed to other runtimes."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.config.fields import option

GGUF_TYPES = ("none", "f16", "q8_0", "f32", "bf16")


@dataclass
class ExportArgs:
    export_dir: str | None = option(
        None, "Folder to write the standalone model to. It must be empty or absent unless "
        "export_overwrite is set; nothing appears there until the export is complete.")
    export_size: str | float = option(
        "5GB", "Largest safetensors shard: a number of gigabytes (1, 1.88) or a size with a unit "
        "(500MB, 2GB, 1GiB).")
    export_device: str = option("cpu", "Where to merge: cpu, or auto (a GPU when there is one).",
                                choices=("cpu", "auto"))
    export_legacy_format: bool = option(False, "Write pytorch_model*.bin instead of safetensors.")
    export_hub_model_id: str | None = option(
        None, "Also upload the export to this hub repository (e.g. me/my-model; created private "
        "if it does not exist).")
    export_dtype: str = option(
        "auto", "Weight dtype of the export. auto: the base model's own dtype (its config.json), "
        "so a bf16 model stays bf16.", choices=("auto", "bfloat16", "float16", "float32"))
    export_verify: bool = option(
        True, "Reload the export and compare its logits with base+adapter on a few prompts.")
    export_verify_tolerance: float | None = option(
        None, "Largest allowed logit difference between the reloaded export and base+adapter, "
        "relative to the largest reference logit. Unset: by export dtype (float32 1e-4, "
        "float16 0.02, bfloat16 0.1). On CPU the merge itself is also checked, in float32, to 1e-4.",
        min=0, min_exclusive=True)
    export_gguf: list[str] | None = option(
        None, "Also write GGUF files for llama.cpp/Ollama (llama-family models): f16, q8_0, "
        "f32, bf16 (comma-separated), or none.", choices=GGUF_TYPES)
    export_modelfile: bool = option(True, "Write an Ollama Modelfile that uses the model's chat template.")
    export_overwrite: bool = option(False, "Replace a non-empty export_dir.")
