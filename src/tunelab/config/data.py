"""Which data to train on and how it becomes token ids."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.config.fields import option


def template_names() -> tuple[str, ...]:
    """The named templates data/ can install (read when the spec is built)."""
    from tunelab.data.templates import TEMPLATE_NAMES

    return tuple(TEMPLATE_NAMES)


@dataclass
class DataArgs:
    dataset: list[str] | None = option(None, "Training dataset names from dataset_info.json (comma-separated).")
    eval_dataset: list[str] | None = option(None, "Evaluation dataset names (comma-separated).")
    dataset_dir: str = option("data", "Folder that holds dataset_info.json and the data files.")
    template: str | None = option(
        None, "Chat template. Unset: the tokenizer's own template (what is trained is what is "
        "served). A name (chatml, qwen, qwen3, llama3, mistral, gemma, glm4, deepseek, phi, alpaca, "
        "default) replaces it and is saved with the run.", choices=template_names)
    cutoff_len: int = option(2048, "Maximum tokens per sample; longer samples are truncated.", min=8)
    max_samples: int | None = option(None, "Use at most this many rows from each dataset.", min=1)
    val_size: float = option(0.0, "Hold out this fraction (<1) or this many rows (>=1) for evaluation.", min=0)
    packing: bool | None = option(
        None, "Concatenate samples into full rows of cutoff_len without cross-contamination "
        "(per-sample position ids). Unset: on for pt, off for sft (whose batches are padding-free).")
    padding_free: bool = option(
        True, "Without packing: concatenate each batch's samples into one row with per-sample "
        "position ids instead of padding them (same samples per step, no pad tokens computed, "
        "samples never see each other).")
    neat_packing: bool = option(False, "Packing that keeps samples apart (always true in TuneLab; kept "
                                "for LLaMA-Factory recipes).")
    train_on_prompt: bool = option(False, "Also train on prompt tokens, not only assistant turns.")
    mask_history: bool = option(False, "Train only on the last assistant turn of each conversation.")
    preprocessing_num_workers: int | None = option(None, "Processes used to tokenise.", min=1)
    tokenized_path: str | None = option(None, "Save the tokenised dataset here, or load it if present.")
    overwrite_cache: bool = option(False, "Tokenise again even if a cached result matches.")
    enable_thinking: bool = option(True, "For reasoning templates: let the model think (<think>...). "
                                   "Applied identically in training and in chat.")
    default_system: str | None = option(None, "System prompt used when a sample has none.")
    placeholders: dict | None = option(
        None, "Values for {{name}}-style placeholders in data, e.g. {name: Tuney, author: Lab}. "
        "Override one with placeholders.name=Tuney.")
    streaming: bool = option(False, "Stream the dataset instead of loading it (not yet supported; "
                             "accepted for LLaMA-Factory recipes and rejected with a message).")
