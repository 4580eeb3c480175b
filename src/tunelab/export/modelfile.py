"""An Ollama Modelfile whose TEMPLATE produces the same prompt as the model's chat template.

Ollama templates are Go templates, not Jinja, so the translation is per template family. We
recognise ChatML (Qwen, TuneLab's tiny models, many fine-tunes) and Llama 3 by their markers;
any other template is written as a comment with a note, and Ollama then uses the GGUF's own.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

CHATML_TEMPLATE = """{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"""

LLAMA3_TEMPLATE = """{{- if .System }}<|start_header_id|>system<|end_header_id|>

{{ .System }}<|eot_id|>{{ end }}{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>

{{ .Content }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>

"""

# family -> (marker in the Jinja template, Ollama template, end-of-turn token, system block regex)
FAMILIES = {
    "chatml": ("<|im_start|>", CHATML_TEMPLATE, "<|im_end|>",
               r"<\|im_start\|>system\n(.*?)<\|im_end\|>"),
    "llama3": ("<|start_header_id|>", LLAMA3_TEMPLATE, "<|eot_id|>",
               r"<\|start_header_id\|>system<\|end_header_id\|>\n\n(.*?)<\|eot_id\|>"),
}


def template_family(chat_template: str | None) -> str | None:
    """``chatml``, ``llama3`` or None (unrecognised or no template)."""
    if not chat_template:
        return None
    for family, (marker, *_rest) in FAMILIES.items():
        if marker in chat_template:
            return family
    return None


def default_system(tokenizer: Any, family: str) -> str | None:
    """The system prompt the chat template inserts when a conversation has none."""
    pattern = FAMILIES[family][3]
    try:
        rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                                 add_generation_prompt=True)
    except Exception:  # a template that needs extra variables: no default to report
        return None
    match = re.search(pattern, rendered, re.DOTALL)
    return match.group(1) if match and match.group(1).strip() else None


def stop_tokens(tokenizer: Any, family: str | None) -> list[str]:
    """Tokens that end a reply: the family's end-of-turn marker and the tokenizer's eos."""
    stops = [FAMILIES[family][2]] if family else []
    eos = getattr(tokenizer, "eos_token", None)
    if eos and eos not in stops:
        stops.append(eos)
    return stops


def render_modelfile(tokenizer: Any, source: str) -> tuple[str, str | None]:
    """The Modelfile text for ``FROM source``, and the template family it used (or None)."""
    template = getattr(tokenizer, "chat_template", None)
    template = template if isinstance(template, str) else None
    family = template_family(template)
    lines = ["# Ollama Modelfile written by `tunelab export`.",
             "# Import with: ollama create my-model -f Modelfile", f"FROM {source}", ""]
    if family:
        lines += [f'TEMPLATE """{FAMILIES[family][1]}"""', ""]
        system = default_system(tokenizer, family)
        if system:
            lines += [f'SYSTEM """{system}"""', ""]
    else:
        lines += ["# The chat template is not one TuneLab can translate to Ollama's Go template",
                  "# syntax (known: ChatML, Llama 3). Ollama uses the template stored in the GGUF",
                  "# (tokenizer.chat_template) when it recognises it; otherwise add a TEMPLATE here.", ""]
    lines += [f'PARAMETER stop "{token}"' for token in stop_tokens(tokenizer, family)]
    return "\n".join(lines) + "\n", family


def write_modelfile(folder: Path, tokenizer: Any, gguf_name: str | None) -> str | None:
    """Write ``folder/Modelfile`` (FROM the GGUF, else the safetensors folder); returns the family."""
    text, family = render_modelfile(tokenizer, f"./{gguf_name}" if gguf_name else ".")
    (folder / "Modelfile").write_text(text, encoding="utf-8")
    return family
