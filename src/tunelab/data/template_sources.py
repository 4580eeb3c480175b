"""Jinja sources of TuneLab's named chat templates.

Every template is *prefix-stable*: rendering ``messages[:k]`` (with the generation prompt when
the next message is the assistant's) is a string prefix of rendering all messages. The encoder
relies on this to find each assistant turn by rendering prefixes, so a template here never
rewrites earlier turns (history reasoning is kept, tool results are not regrouped backwards).

Shared pieces are Jinja snippets joined in Python; all text is emitted through ``{{- '...' }}``
so that whitespace is exactly what the string literals say.
"""

from __future__ import annotations

import json

ALPACA_SYSTEM = ("Below is an instruction that describes a task. "
                 "Write a response that appropriately completes the request.")
QWEN_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."


def _split_system(default: str | None) -> str:
    """Sets ``system_message`` (the first system turn, else the default) and ``loop_messages``."""
    fallback = json.dumps(default) if default else "none"
    return (
        "{%- if messages and messages[0]['role'] == 'system' -%}"
        "{%- set system_message = messages[0]['content'] -%}{%- set loop_messages = messages[1:] -%}"
        "{%- else -%}"
        "{%- set system_message = " + fallback + " -%}{%- set loop_messages = messages -%}"
        "{%- endif -%}")


# ``content``: the visible assistant text; ``answer``: the same with its reasoning (if any) in front
# as a <think> block. Tool calls are separated by a newline only from visible text (Qwen's rule).
_ANSWER = (
    "{%- set content = message['content'] if message['content'] is defined and message['content'] is not none else '' -%}"
    "{%- set answer = content -%}"
    "{%- if message['reasoning_content'] is defined and message['reasoning_content'] -%}"
    "{%- set answer = '<think>\\n' + message['reasoning_content'] + '\\n</think>\\n\\n' + content -%}"
    "{%- endif -%}")

# Qwen3: always a <think> block (empty when there is no reasoning, or when thinking is off), the
# reasoning taken from reasoning_content or from an inline <think>...</think> in the content.
_QWEN3_ANSWER = (
    "{%- set content = message['content'] if message['content'] is defined and message['content'] is not none else '' -%}"
    "{%- set reasoning = message['reasoning_content'] if message['reasoning_content'] is defined and message['reasoning_content'] is not none else '' -%}"
    "{%- if not reasoning and '</think>' in content -%}"
    "{%- set reasoning = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') -%}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') -%}"
    "{%- endif -%}"
    "{%- if enable_thinking is defined and enable_thinking is false -%}{%- set reasoning = '' -%}{%- endif -%}"
    "{%- set answer = '<think>\\n' + reasoning.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') -%}")

_NO_THINK_PROMPT = ("{%- if enable_thinking is defined and enable_thinking is false -%}"
                    "{{- '<think>\\n\\n</think>\\n\\n' -}}{%- endif -%}")


def _call_json_macro(args_key: str = "arguments") -> str:
    """``call_json(call)``: one tool call as ``{"name": ..., "<args_key>": ...}``."""
    return (
        "{%- macro call_json(call) -%}"
        "{%- set fn = call['function'] if call['function'] is defined else call -%}"
        "{%- set args = fn['arguments'] if fn['arguments'] is defined else {} -%}"
        "{{- '{\"name\": \"' + fn['name'] + '\", \"" + args_key + "\": ' + "
        "(args if args is string else args | tojson) + '}' -}}"
        "{%- endmacro -%}")


_TOOLS_LINES = "{%- for tool in tools -%}{{- '\\n' + (tool | tojson) -}}{%- endfor -%}"
_CALLS_LIST = ("{%- if message['tool_calls'] is defined -%}{{- '[' -}}"
               "{%- for call in message['tool_calls'] -%}{%- if not loop.first -%}{{- ', ' -}}{%- endif -%}"
               "{{- call_json(call) -}}{%- endfor -%}{{- ']' -}}{%- endif -%}")
_EOS = "{{- eos_token if eos_token else '' -}}"


def _chatml(default_system: str | None, qwen3: bool = False) -> str:
    """ChatML with Qwen's tool conventions (<tools>, <tool_call>, <tool_response>)."""
    tools = (
        "{%- if tools -%}{{- '<|im_start|>system\\n' -}}"
        "{%- if system_message -%}{{- system_message + '\\n\\n' -}}{%- endif -%}"
        "{{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
        "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' -}}"
        + _TOOLS_LINES +
        "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and "
        "arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\"name\": <function-name>, "
        "\"arguments\": <args-json-object>}\\n</tool_call><|im_end|>\\n' -}}"
        "{%- elif system_message -%}{{- '<|im_start|>system\\n' + system_message + '<|im_end|>\\n' -}}"
        "{%- endif -%}")
    assistant = (
        (_QWEN3_ANSWER if qwen3 else _ANSWER)
        + "{{- '<|im_start|>assistant\\n' + answer -}}"
        "{%- if message['tool_calls'] is defined -%}{%- for call in message['tool_calls'] -%}"
        "{%- if content or not loop.first -%}{{- '\\n' -}}{%- endif -%}"
        "{{- '<tool_call>\\n' + call_json(call) + '\\n</tool_call>' -}}{%- endfor -%}{%- endif -%}"
        "{{- '<|im_end|>\\n' -}}")
    tool = (
        "{%- if loop.first or loop_messages[loop.index0 - 1]['role'] != 'tool' -%}{{- '<|im_start|>user' -}}{%- endif -%}"
        "{{- '\\n<tool_response>\\n' + message['content'] + '\\n</tool_response>' -}}"
        "{%- if loop.last or loop_messages[loop.index0 + 1]['role'] != 'tool' -%}{{- '<|im_end|>\\n' -}}{%- endif -%}")
    other = "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    prompt = "{{- '<|im_start|>assistant\\n' -}}" + (_NO_THINK_PROMPT if qwen3 else "")
    return _assemble(default_system, tools, assistant, tool, other, prompt)


def _assemble(default_system: str | None, head: str, assistant: str, tool: str, other: str,
              prompt: str, args_key: str = "arguments") -> str:
    """The common skeleton: header, one branch per role, generation prompt."""
    return (
        _call_json_macro(args_key) + _split_system(default_system) + head
        + "{%- for message in loop_messages -%}"
        "{%- if message['role'] == 'assistant' -%}" + assistant
        + "{%- elif message['role'] == 'tool' -%}" + tool
        + "{%- else -%}" + other + "{%- endif -%}{%- endfor -%}"
        "{%- if add_generation_prompt -%}" + prompt + "{%- endif -%}")


def _plain(default_system: str | None, user: str, assistant: str, tool: str, sep: str,
           system: str = "", every_eos: bool = False) -> str:
    """default/alpaca: ``<prefix>text<sep>`` blocks; the assistant's (or, with ``every_eos``,
    every turn's) text ends with eos, as LLaMA-Factory's ``default`` template does."""
    eos = _EOS if every_eos else ""
    head = ("{%- if system_message -%}{{- '" + system + "' + system_message -}}" + eos + "{{- '" + sep + "' -}}{%- endif -%}"
            "{%- if tools -%}{{- 'Tools:' -}}" + _TOOLS_LINES + "{{- '" + sep + "' -}}{%- endif -%}")
    answer = (_ANSWER + "{{- '" + assistant + "' + answer -}}"
              "{%- if message['tool_calls'] is defined -%}{{- 'Tool calls: ' -}}{%- endif -%}"
              + _CALLS_LIST + _EOS + "{{- '" + sep + "' -}}")
    return _assemble(default_system, head,
                     answer,
                     "{{- '" + tool + "' + message['content'] -}}" + eos + "{{- '" + sep + "' -}}",
                     "{{- '" + user + "' + message['content'] -}}" + eos + "{{- '" + sep + "' -}}",
                     "{{- '" + assistant + "' -}}")


def _llama3(default_system: str | None = None) -> str:
    head = (
        "{%- if bos_token -%}{{- bos_token -}}{%- endif -%}"
        "{%- if system_message or tools -%}{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' -}}"
        "{%- if tools -%}{{- 'Environment: ipython\\n\\nYou have access to the following functions. To call "
        "a function, respond with JSON of the form {\"name\": function name, \"parameters\": dictionary of "
        "argument name and its value}.' -}}" + _TOOLS_LINES
        + "{%- if system_message -%}{{- '\\n\\n' -}}{%- endif -%}{%- endif -%}"
        "{{- (system_message if system_message else '') + '<|eot_id|>' -}}{%- endif -%}")
    header = "{{- '<|start_header_id|>' + role + '<|end_header_id|>\\n\\n' -}}"
    assistant = (_ANSWER + "{%- set role = 'assistant' -%}" + header + "{{- answer -}}"
                 "{%- if message['tool_calls'] is defined -%}{%- for call in message['tool_calls'] -%}"
                 "{%- if content or not loop.first -%}{{- '\\n' -}}{%- endif -%}{{- call_json(call) -}}"
                 "{%- endfor -%}{%- endif -%}{{- '<|eot_id|>' -}}")
    tool = "{%- set role = 'ipython' -%}" + header + "{{- message['content'] + '<|eot_id|>' -}}"
    other = "{%- set role = message['role'] -%}" + header + "{{- message['content'] + '<|eot_id|>' -}}"
    prompt = "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}"
    return _assemble(default_system, head, assistant, tool, other, prompt, args_key="parameters")


def _mistral(default_system: str | None = None) -> str:
    """Mistral v7 style ([SYSTEM_PROMPT], [INST]); tools stated once after the system prompt."""
    head = ("{%- if bos_token -%}{{- bos_token -}}{%- endif -%}"
            "{%- if system_message -%}{{- '[SYSTEM_PROMPT]' + system_message + '[/SYSTEM_PROMPT]' -}}{%- endif -%}"
            "{%- if tools -%}{{- '[AVAILABLE_TOOLS]' + (tools | tojson) + '[/AVAILABLE_TOOLS]' -}}{%- endif -%}")
    assistant = (_ANSWER + "{{- answer -}}{%- if message['tool_calls'] is defined -%}{{- '[TOOL_CALLS]' -}}"
                 "{%- endif -%}" + _CALLS_LIST + _EOS)
    tool = "{{- '[TOOL_RESULTS]' + message['content'] + '[/TOOL_RESULTS]' -}}"
    other = "{{- '[INST]' + message['content'] + '[/INST]' -}}"
    return _assemble(default_system, head, assistant, tool, other, "")


def _gemma(default_system: str | None = None) -> str:
    """Gemma: no system role, so the system prompt (and tools) open the first user turn."""
    head = "{%- if bos_token -%}{{- bos_token -}}{%- endif -%}"
    preamble = ("{%- if loop.first -%}{%- if system_message -%}{{- system_message + '\\n\\n' -}}{%- endif -%}"
                "{%- if tools -%}{{- 'Tools:' -}}" + _TOOLS_LINES + "{{- '\\n\\n' -}}{%- endif -%}{%- endif -%}")
    assistant = (_ANSWER + "{{- '<start_of_turn>model\\n' + answer -}}"
                 "{%- if message['tool_calls'] is defined -%}{%- if content -%}{{- '\\n' -}}{%- endif -%}{%- endif -%}"
                 + _CALLS_LIST + "{{- '<end_of_turn>\\n' -}}")
    tool = "{{- '<start_of_turn>user\\n' + message['content'] + '<end_of_turn>\\n' -}}"
    other = ("{{- '<start_of_turn>user\\n' -}}" + preamble
             + "{{- message['content'] + '<end_of_turn>\\n' -}}")
    return _assemble(default_system, head, assistant, tool, other, "{{- '<start_of_turn>model\\n' -}}")


def _glm4(default_system: str | None = None) -> str:
    """GLM-4: role tokens without end markers; the eos closes an assistant turn (as LLaMA-Factory)."""
    head = ("{{- '[gMASK]<sop>' -}}{%- if system_message or tools -%}{{- '<|system|>\\n' -}}"
            "{%- if system_message -%}{{- system_message -}}{%- endif -%}"
            "{%- if tools -%}{%- if system_message -%}{{- '\\n\\n' -}}{%- endif -%}"
            "{{- '# Available tools' -}}{%- for tool in tools -%}{%- set fn = tool['function'] if tool['function'] is defined else tool -%}"
            "{{- '\\n\\n## ' + fn['name'] + '\\n\\n' + (fn | tojson(indent=4)) -}}{%- endfor -%}"
            "{{- '\\nCall these functions with their arguments as JSON.' -}}{%- endif -%}{%- endif -%}")
    assistant = (
        _ANSWER + "{%- if answer or message['tool_calls'] is not defined -%}{{- '<|assistant|>\\n' + answer -}}{%- endif -%}"
        "{%- if message['tool_calls'] is defined -%}{%- for call in message['tool_calls'] -%}"
        "{%- set fn = call['function'] if call['function'] is defined else call -%}"
        "{{- '<|assistant|>' + fn['name'] + '\\n' + (fn['arguments'] if fn['arguments'] is string else fn['arguments'] | tojson) -}}"
        "{%- endfor -%}{%- endif -%}" + _EOS)
    tool = "{{- '<|observation|>\\n' + message['content'] -}}"
    other = "{{- '<|' + message['role'] + '|>\\n' + message['content'] -}}"
    return _assemble(default_system, head, assistant, tool, other, "{{- '<|assistant|>' -}}")


def _deepseek(default_system: str | None = None) -> str:
    """DeepSeek-V3 style: bare system text, fullwidth-bar role markers, DeepSeek tool-call markers."""
    head = ("{%- if bos_token -%}{{- bos_token -}}{%- endif -%}"
            "{%- if system_message -%}{{- system_message -}}{%- endif -%}"
            "{%- if tools -%}{{- '\\n\\n## Tools\\nYou can call these functions:' -}}" + _TOOLS_LINES
            + "{{- '\\n' -}}{%- endif -%}")
    assistant = (
        _ANSWER + "{{- '<｜Assistant｜>' + answer -}}"
        "{%- if message['tool_calls'] is defined -%}{{- '<｜tool▁calls▁begin｜>' -}}"
        "{%- for call in message['tool_calls'] -%}{%- set fn = call['function'] if call['function'] is defined else call -%}"
        "{{- '<｜tool▁call▁begin｜>function<｜tool▁sep｜>' + fn['name'] + '\\n```json\\n' + "
        "(fn['arguments'] if fn['arguments'] is string else fn['arguments'] | tojson) + '\\n```<｜tool▁call▁end｜>' -}}"
        "{%- endfor -%}{{- '<｜tool▁calls▁end｜>' -}}{%- endif -%}" + _EOS)
    tool = ("{{- '<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + message['content'] + "
            "'<｜tool▁output▁end｜><｜tool▁outputs▁end｜>' -}}")
    other = "{{- '<｜User｜>' + message['content'] -}}"
    return _assemble(default_system, head, assistant, tool, other, "{{- '<｜Assistant｜>' -}}")


def _phi(default_system: str | None = None) -> str:
    """Phi-3 / Phi-4-mini style: <|role|> ... <|end|>, tools in <|tool|> inside the system turn."""
    head = ("{%- if system_message or tools -%}{{- '<|system|>\\n' -}}"
            "{%- if system_message -%}{{- system_message -}}{%- endif -%}"
            "{%- if tools -%}{{- '<|tool|>' + (tools | tojson) + '<|/tool|>' -}}{%- endif -%}"
            "{{- '<|end|>\\n' -}}{%- endif -%}")
    assistant = (_ANSWER + "{{- '<|assistant|>\\n' + answer -}}"
                 "{%- if message['tool_calls'] is defined -%}{{- '<|tool_call|>' -}}{%- endif -%}" + _CALLS_LIST
                 + "{%- if message['tool_calls'] is defined -%}{{- '<|/tool_call|>' -}}{%- endif -%}"
                 "{{- '<|end|>\\n' -}}")
    tool = "{{- '<|tool_response|>\\n' + message['content'] + '<|end|>\\n' -}}"
    other = "{{- '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' -}}"
    return _assemble(default_system, head, assistant, tool, other, "{{- '<|assistant|>\\n' -}}")


def _empty(default_system: str | None) -> str:
    """LLaMA-Factory's ``empty``: the texts one after another, no markers, no eos."""
    return _assemble(default_system, "{%- if system_message -%}{{- system_message -}}{%- endif -%}",
                     _ANSWER + "{{- answer -}}", "{{- message['content'] -}}", "{{- message['content'] -}}", "")


# name -> builder(default system prompt). The layouts of ``default`` and ``alpaca`` are
# LLaMA-Factory's, character for character, so their recipes give the same token ids.
BUILDERS = {
    "default": lambda system: _plain(system, "Human: ", "Assistant:", "Observation: ", "\\n",
                                     system="System: ", every_eos=True),
    "alpaca": lambda system: _plain(system, "### Instruction:\\n", "### Response:\\n",
                                    "### Observation:\\n", "\\n\\n"),
    "chatml": _chatml,
    "qwen": _chatml,
    "qwen3": lambda system: _chatml(system, qwen3=True),
    "llama3": _llama3,
    "mistral": _mistral,
    "gemma": _gemma,
    "glm4": _glm4,
    "deepseek": _deepseek,
    "phi": _phi,
    "empty": _empty,
}
# The system prompt a template uses when the sample has none and default_system is unset.
DEFAULT_SYSTEMS = {"alpaca": ALPACA_SYSTEM, "qwen": QWEN_SYSTEM}


def build_source(name: str, default_system: str | None = None) -> str:
    """The Jinja source of template ``name``; ``default_system`` (even ``""``, meaning none)
    replaces the template's own default system prompt, as in LLaMA-Factory."""
    system = default_system if default_system is not None else DEFAULT_SYSTEMS.get(name)
    return BUILDERS[name](system)


SOURCES: dict[str, str] = {name: build_source(name) for name in BUILDERS}
