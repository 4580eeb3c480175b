"""The model list of the top bar (by family) and the checks behind a typed model path."""

from __future__ import annotations

import json
from pathlib import Path

from tunelab.errors import ModelError

# (family, hub ids) in the order the list shows them; the built-in tiny models come first so a
# fresh machine without a hub connection has something that works.
MODEL_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("TuneLab (built-in)", ("tunelab/tiny-chat", "tunelab/tiny-think")),
    ("Qwen 2.5", ("Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-7B-Instruct",
                  "Qwen/Qwen2.5-14B-Instruct", "Qwen/Qwen2.5-Coder-7B-Instruct")),
    ("Qwen 3", ("Qwen/Qwen3-0.6B", "Qwen/Qwen3-1.7B", "Qwen/Qwen3-4B", "Qwen/Qwen3-8B", "Qwen/Qwen3-14B")),
    ("Llama 3.x", ("meta-llama/Llama-3.2-1B-Instruct", "meta-llama/Llama-3.2-3B-Instruct",
                   "meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Meta-Llama-3-8B-Instruct")),
    ("GLM-4", ("THUDM/glm-4-9b-chat-hf", "THUDM/GLM-4-9B-0414")),
    ("Mistral", ("mistralai/Mistral-7B-Instruct-v0.3", "mistralai/Mistral-Nemo-Instruct-2407")),
    ("Gemma 2", ("google/gemma-2-2b-it", "google/gemma-2-9b-it")),
    ("Gemma 3", ("google/gemma-3-1b-it", "google/gemma-3-4b-it", "google/gemma-3-12b-it")),
    ("DeepSeek", ("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
                  "deepseek-ai/DeepSeek-R1-Distill-Llama-8B")),
    ("Phi", ("microsoft/Phi-3.5-mini-instruct", "microsoft/Phi-4-mini-instruct", "microsoft/phi-4")),
)

DEFAULT_MODEL = "tunelab/tiny-chat"


def model_choices() -> list[tuple[str, str]]:
    """(label, value) pairs for the model dropdown: 'family · id' -> id."""
    return [(f"{family} · {model_id}", model_id) for family, ids in MODEL_FAMILIES for model_id in ids]


def family_of(model: str) -> str | None:
    """The family a listed model belongs to, or None for a custom path."""
    return next((family for family, ids in MODEL_FAMILIES if model in ids), None)


def model_folder(model: str) -> Path | None:
    """The local folder behind ``model`` (a built-in one is built on first use), or None for a hub
    id that is not on disk."""
    from tunelab.testing.builtin import builtin_model_path, is_builtin

    if is_builtin(model):
        return builtin_model_path(model)
    path = Path(model).expanduser()
    return path if path.exists() else None


def check_model_folder(folder: Path) -> dict:
    """The parsed config.json of a local model folder, or a ModelError saying what is missing."""
    config = folder / "config.json"
    if not folder.is_dir():
        raise ModelError(f"{folder} is not a folder", where="model",
                         hint="give a model folder holding config.json, or a hub id like Qwen/Qwen3-0.6B")
    try:
        return json.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{folder} has no config.json", where="model",
                         hint="point at the folder that holds config.json and the weights") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {config}: {exc}", where="model",
                         hint="the file must be the model's JSON config") from None


def tokenizer_template(folder: Path) -> str | None:
    """The chat template the model's tokenizer ships with (tokenizer_config.json or
    chat_template.jinja), or None."""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    try:
        data = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    template = data.get("chat_template")
    return template if isinstance(template, str) else None
