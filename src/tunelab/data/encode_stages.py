"""Samples of the post-training stages -> trainer rows, with the run's chat template.

Pairs and tagged answers become token ids cut from one render of the whole conversation (as
sft's are), so the prompt and answer tokens a preference stage scores are exactly the ones chat
and serve will produce; the columns follow TRL's processed-dataset names (``prompt_ids``,
``chosen_ids``, ``rejected_ids``; ``prompt_ids``, ``completion_ids``, ``label`` for KTO), so TRL's
collators take them as they are.

Prompts (grpo) stay messages: GRPOTrainer renders them with the tokenizer's chat template (the
run's) and ``add_generation_prompt``, which gives the same tokens as chat's prompt for them.
"""

from __future__ import annotations

from tunelab.data.conversation import (Conversation, LabeledSample, Message, PreferenceSample,
                                       PromptSample)
from tunelab.data.convert import RowError
from tunelab.data.encode import answer_tokens, render

# Keyword arguments GRPOTrainer gives reward functions itself, or reads as images: a dataset
# column of that name cannot reach a reward function, so it is not kept.
_TRAINER_NAMES = frozenset({"prompt", "prompts", "completion", "completions", "completion_ids",
                            "trainer_state", "log_extra", "log_metric", "environments",
                            "environment", "image", "images"})


def split_answer(conv: Conversation, tokenizer, *, enable_thinking: bool = True,
                 default_system: str | None = None) -> tuple[list[int], list[int]]:
    """``(prompt_ids, answer_ids)`` of a conversation whose last turn is the assistant's: the
    tokens before its answer, and the answer's tokens (end of turn included)."""
    ids, answer = answer_tokens(conv, tokenizer, enable_thinking=enable_thinking,
                                default_system=default_system, last_only=True)
    trained = [i for i, keep in enumerate(answer) if keep]
    if not trained:
        return ids, []
    return ids[:trained[0]], ids[trained[0]:trained[-1] + 1]


def fit_lengths(prompt: int, answer: int, cutoff_len: int) -> tuple[int, int]:
    """How many prompt and answer tokens fit ``cutoff_len``: the answer keeps at least half the
    budget (it is what is trained), the prompt keeps the rest."""
    if prompt + answer <= cutoff_len:
        return prompt, answer
    answer_kept = min(answer, max(cutoff_len - prompt, cutoff_len // 2))
    return cutoff_len - answer_kept, answer_kept


def encode_pairwise(sample: PreferenceSample, tokenizer, options: dict) -> dict | None:
    """``{"prompt_ids", "chosen_ids", "rejected_ids"}`` (prompt cut from its start, answers from
    their end, to ``cutoff_len`` for prompt + the longer answer); None when nothing trainable fits."""
    sides = {}
    for side, answer in (("chosen", sample.chosen), ("rejected", sample.rejected)):
        conv = Conversation(sample.prompt.messages + [Message("assistant", answer.content)],
                            system=sample.prompt.system, tools=sample.prompt.tools)
        sides[side] = split_answer(conv, tokenizer, enable_thinking=options["enable_thinking"],
                                   default_system=options["default_system"])
    prompt = sides["chosen"][0]
    chosen, rejected = sides["chosen"][1], sides["rejected"][1]
    if not chosen or not rejected:
        return None
    kept_prompt, kept_answer = fit_lengths(len(prompt), max(len(chosen), len(rejected)),
                                           options["cutoff_len"])
    if kept_prompt <= 0 or kept_answer <= 0:
        return None
    return {"prompt_ids": prompt[len(prompt) - kept_prompt:], "chosen_ids": chosen[:kept_answer],
            "rejected_ids": rejected[:kept_answer]}


def prompt_text(sample: PromptSample, tokenizer, options: dict) -> str:
    """The prompt as the model sees it: the chat template's render with the generation prompt."""
    messages = sample.prompt.to_chat_messages(options["default_system"])
    return render(tokenizer, messages, generation_prompt=True, enable_thinking=options["enable_thinking"])


def encode_prompt(sample: PromptSample, tokenizer, options: dict) -> dict:
    """``{"prompt": messages, "answer": reference or None, <the row's other columns>}``: the row
    GRPOTrainer reads, whose columns reach the reward functions by name.

    Raises RowError for a prompt with tools (GRPOTrainer renders every prompt with one tool
    list) or longer than ``cutoff_len`` tokens (TRL does not cut prompts).
    """
    if sample.prompt.tools:
        raise RowError("a grpo/rloo prompt cannot carry tools (TRL renders every prompt with the "
                       "same tool list): drop the row's tools column")
    length = len(tokenizer(prompt_text(sample, tokenizer, options), add_special_tokens=False)["input_ids"])
    if length > options["cutoff_len"]:
        raise RowError(f"the prompt is {length} tokens, longer than cutoff_len={options['cutoff_len']} "
                       "(prompts are not cut): raise cutoff_len or shorten the prompt")
    extras = {k: v for k, v in sample.extras.items() if k not in _TRAINER_NAMES}
    return {**extras, "prompt": sample.prompt.to_chat_messages(options["default_system"]),
            "answer": sample.answer}


def encode_unpaired(sample: LabeledSample, tokenizer, options: dict) -> dict | None:
    """``{"prompt_ids", "completion_ids", "label"}`` (KTO's processed columns): the prompt and
    the last answer of one render, cut to ``cutoff_len`` as pairs are; None when nothing fits."""
    prompt, answer = split_answer(sample.conversation, tokenizer, enable_thinking=options["enable_thinking"],
                                  default_system=options["default_system"])
    if not answer:
        return None
    kept_prompt, kept_answer = fit_lengths(len(prompt), len(answer), options["cutoff_len"])
    if kept_prompt <= 0 or kept_answer <= 0:
        return None
    return {"prompt_ids": prompt[len(prompt) - kept_prompt:], "completion_ids": answer[:kept_answer],
            "label": sample.desirable}


# sample kind -> encoder(sample, tokenizer, options) -> row dict or None (dropped by truncation).
STAGE_ENCODERS = {"pairwise": encode_pairwise, "unpaired": encode_unpaired, "prompt": encode_prompt}
