"""Check an export: reload the folder and compare it with base+adapter on a few probes: a causal
LM's logits at every token of a few prompts, a reward model's rewards of a few whole texts."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

# A handful of short, varied chats: enough to touch every layer, cheap on a CPU.
PROMPTS = (
    "Hello! Who are you?",
    "What is 17 + 25? Answer briefly.",
    "Write one sentence about the sea.",
)

# Export vs reference, relative to the largest reference logit. Measured on the built-in tiny
# model with trained adapters: float32 ~1e-6, float16 8e-4 to 4e-3, bfloat16 0.007 to 0.026. These
# catch a broken export (NaN/overflow, a lost config value, a missing tensor); the merge itself
# is checked separately and tightly in float32 (MERGE_TOLERANCE).
DEFAULT_TOLERANCE = {"float32": 1e-4, "bfloat16": 0.1, "float16": 0.02}
MERGE_TOLERANCE = 1e-4

# A reward model's probes: whole chats (a prompt and an answer), of different lengths so the
# reloaded export's batch is padded, and with answers a reward model would tell apart.
REWARD_PROBES = (
    ("Hello! Who are you?", "I am an assistant, happy to help you."),
    ("Hello! Who are you?", "whatever."),
    ("What is 17 + 25? Answer briefly.", "42."),
    ("What is 17 + 25? Answer briefly.", "17 + 25 is 43, I think, but I did not check it."),
    ("Write one sentence about the sea.", "The sea is wide, deep and blue."),
)


@dataclass
class VerifyReport:
    """How closely the reloaded export reproduces the reference model (base + adapters).

    Three checks: the merged weights give base+adapter's outputs (``merge_rel_diff``, before the
    dtype cast), the files hold exactly the weights in memory (``weights_match``), and the folder
    reloaded with plain transformers gives the reference outputs within the dtype's tolerance.
    ``kind`` says what the outputs are: "logits" (a causal LM; ``greedy_agreement`` is how often
    the argmax agrees) or "rewards" (a reward model; ``rank_agreement`` is how often two probes
    are ordered the same way).
    """

    max_abs_diff: float
    max_rel_diff: float
    tolerance: float
    greedy_agreement: float | None
    prompts: int
    tokens: int
    merge_rel_diff: float | None = None
    merge_tolerance: float = MERGE_TOLERANCE
    weights_match: bool = True
    kind: str = "logits"
    rank_agreement: float | None = None

    @property
    def merge_ok(self) -> bool:
        return self.merge_rel_diff is None or self.merge_rel_diff <= self.merge_tolerance

    @property
    def passed(self) -> bool:
        return self.max_rel_diff <= self.tolerance and self.merge_ok and self.weights_match

    def describe(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        if math.isnan(self.max_abs_diff):
            return (f"verification {verdict}: the reloaded export or the reference gives NaN "
                    f"{self.kind} on {self.prompts} prompts (non-finite weights)")
        parts = [self._outputs_line(verdict)]
        if self.merge_rel_diff is not None:
            parts.append(f"merge before the dtype cast: {self.merge_rel_diff:.3g} "
                         f"(tolerance {self.merge_tolerance:.3g})")
        parts.append("saved files hold exactly the merged weights" if self.weights_match
                     else "saved files DIFFER from the merged weights")
        return "; ".join(parts)

    def _outputs_line(self, verdict: str) -> str:
        if self.kind == "rewards":
            return (f"verification {verdict}: max |reward difference| {self.max_abs_diff:.3g} "
                    f"({self.max_rel_diff:.3g} of the largest reward; tolerance "
                    f"{self.tolerance:.3g}) over {self.prompts} probe texts ({self.tokens} tokens) "
                    f"scored as one padded batch; the probes rank in the same order at "
                    f"{100 * (self.rank_agreement or 0):.1f}% of pairs")
        return (f"verification {verdict}: max |logit difference| {self.max_abs_diff:.3g} "
                f"({self.max_rel_diff:.3g} of the largest logit; tolerance {self.tolerance:.3g}) "
                f"over {self.tokens} tokens of {self.prompts} prompts; greedy next token agrees at "
                f"{100 * (self.greedy_agreement or 0):.1f}% of positions")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


@dataclass(frozen=True)
class Probe:
    """What an export is checked on: token ids of a few texts, and whether the outputs compared
    are a reward model's rewards (one per text) or a causal LM's logits (one row per token)."""

    inputs: list[list[int]]
    reward: bool = False

    def outputs(self, model: Any) -> list[Any]:
        """The reference side: each text alone, unpadded."""
        return (compute_rewards if self.reward else compute_logits)(model, self.inputs)

    def compare(self, reference: list[Any], exported: list[Any], tolerance: float) -> VerifyReport:
        if self.reward:
            return compare_rewards(reference, exported, tolerance,
                                   tokens=sum(len(ids) for ids in self.inputs))
        return compare_logits(reference, exported, tolerance)


def make_probe(tokenizer: Any, reward: bool, enabled: bool = True) -> Probe:
    """The probe of a causal LM (prompts) or a reward model (whole chats); no texts when off."""
    if not enabled:
        return Probe([], reward)
    return Probe(reward_inputs(tokenizer) if reward else verification_inputs(tokenizer), reward)


def verification_inputs(tokenizer: Any) -> list[list[int]]:
    """Token ids of the prompts, rendered with the chat template when the tokenizer has one."""
    batches = []
    for text in PROMPTS:
        if getattr(tokenizer, "chat_template", None):
            rendered = tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
            ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
        else:
            ids = tokenizer(text)["input_ids"]
        batches.append(list(ids))
    return batches


def reward_inputs(tokenizer: Any) -> list[list[int]]:
    """Token ids of the reward probes: each prompt and answer as one chat, rendered with the
    chat template when the tokenizer has one (as `tunelab score` renders a prompt/response)."""
    batches = []
    for prompt, answer in REWARD_PROBES:
        if getattr(tokenizer, "chat_template", None):
            rendered = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}],
                tokenize=False)
            ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
        else:
            ids = tokenizer(f"{prompt}\n{answer}")["input_ids"]
        batches.append(list(ids))
    return batches


def compute_logits(model: Any, inputs: list[list[int]]) -> list[Any]:
    """float32 CPU logits of each prompt, run one at a time (no padding to get wrong)."""
    import torch

    device = next(model.parameters()).device
    outputs = []
    with torch.no_grad():
        for ids in inputs:
            tensor = torch.tensor([ids], device=device)
            outputs.append(model(input_ids=tensor).logits[0].float().cpu())
    return outputs


def compare_logits(reference: list[Any], exported: list[Any], tolerance: float) -> VerifyReport:
    """Largest absolute and relative logit difference, and how often the argmax agrees.

    A NaN anywhere makes the difference NaN (and the check fail): it is never read as 0.
    """
    max_abs = scale = 0.0
    agree = total = 0
    for ref, out in zip(reference, exported, strict=True):
        diff, size = float((ref - out).abs().max()), float(ref.abs().max())
        max_abs = diff if math.isnan(diff) or math.isnan(max_abs) else max(max_abs, diff)
        scale = max(scale, size) if not math.isnan(size) else scale
        agree += int((ref.argmax(-1) == out.argmax(-1)).sum())
        total += ref.shape[0]
    return VerifyReport(max_abs_diff=max_abs, max_rel_diff=max_abs / max(scale, 1e-12),
                        tolerance=tolerance, greedy_agreement=agree / max(total, 1),
                        prompts=len(reference), tokens=total)


def compute_rewards(model: Any, inputs: list[list[int]]) -> list[Any]:
    """float32 CPU reward (the score head's output at the last token) of each text, one at a time."""
    import torch

    device = next(model.parameters()).device
    with torch.no_grad():
        return [model(input_ids=torch.tensor([ids], device=device)).logits[0, 0].float().cpu()
                for ids in inputs]


def batched_rewards(model: Any, inputs: list[list[int]]) -> list[Any]:
    """The rewards of all texts as one right-padded batch, as `tunelab score` and training feed
    a reward model. transformers reads each reward at the last token that is not the config's
    pad token, so a wrong pad token gives wrong rewards and a missing one is refused by
    transformers itself: either way the export fails its check."""
    import torch

    pad = model.config.get_text_config().pad_token_id
    width = max(len(ids) for ids in inputs)
    ids = torch.tensor([row + [pad or 0] * (width - len(row)) for row in inputs])
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in inputs])
    device = next(model.parameters()).device
    with torch.no_grad():
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
    return list(logits[:, 0].float().cpu())


def compare_rewards(reference: list[Any], exported: list[Any], tolerance: float,
                    tokens: int = 0) -> VerifyReport:
    """Largest absolute and relative reward difference (relative to the largest reference
    reward), and how often two probes are ranked the same way. NaN is never read as 0."""
    ref = [float(r) for r in reference]
    out = [float(e) for e in exported]
    diffs = [abs(a - b) for a, b in zip(ref, out, strict=True)]
    max_abs = math.nan if any(math.isnan(d) for d in diffs) else max(diffs, default=0.0)
    scale = max((abs(r) for r in ref if not math.isnan(r)), default=0.0)
    pairs = [(i, j) for i in range(len(ref)) for j in range(i + 1, len(ref))]
    same = sum((ref[i] > ref[j]) == (out[i] > out[j]) for i, j in pairs)
    return VerifyReport(max_abs_diff=max_abs, max_rel_diff=max_abs / max(scale, 1e-12),
                        tolerance=tolerance, greedy_agreement=None, prompts=len(ref),
                        tokens=tokens, kind="rewards", rank_agreement=same / max(len(pairs), 1))


def non_finite_tensors(tensors: Iterable[tuple[str, Any]]) -> dict[str, list[str]]:
    """Names of the floating-point tensors holding NaN, and of those holding +-inf."""
    import torch

    found: dict[str, list[str]] = {"NaN": [], "inf": []}
    for name, tensor in tensors:
        if not tensor.is_floating_point():
            continue
        if torch.isnan(tensor).any():
            found["NaN"].append(name)
        elif torch.isinf(tensor).any():
            found["inf"].append(name)
    return found


def describe_non_finite(found: dict[str, list[str]], total: int, shown: int = 3) -> str | None:
    """"NaN in 4 of 24 tensors (a, b, c and 1 more)" or None when every tensor is finite."""
    parts = []
    for kind, names in found.items():
        if names:
            more = f" and {len(names) - shown} more" if len(names) > shown else ""
            parts.append(f"{kind} in {len(names)} of {total} tensors ({', '.join(names[:shown])}{more})")
    return "; ".join(parts) or None


def tolerance_for(dtype: str, requested: float | None) -> float:
    """The recipe's tolerance, else the default for the export dtype."""
    return requested if requested is not None else DEFAULT_TOLERANCE[dtype]


def saved_weights_match(model: Any, folder: Path) -> bool:
    """Whether every tensor in the folder's weight files equals the model's, bit for bit."""
    import torch

    from tunelab.export.save import iter_saved_tensors

    state = model.state_dict()
    seen = 0
    for name, saved in iter_saved_tensors(folder):
        own = state.get(name)
        if own is None or not _same_bits(own.detach().cpu(), saved):
            return False
        seen += 1
    return seen > 0


def _same_bits(a: Any, b: Any) -> bool:
    """Bit-for-bit equality (NaN equals the same NaN, unlike ``torch.equal``)."""
    import torch

    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return torch.equal(a.contiguous().reshape(-1).view(torch.uint8),
                       b.contiguous().reshape(-1).view(torch.uint8))


def verify_export(folder: str, reference: list[Any], probe: Probe, tolerance: float,
                  device: str = "cpu") -> VerifyReport:
    """Reload ``folder`` with plain ``AutoModelForCausalLM`` (a reward model: plain
    ``AutoModelForSequenceClassification``, scoring the probes as one padded batch) and compare
    with ``reference``.

    The export is reloaded in float32 so the difference measures what was written (merge and
    dtype rounding), not the arithmetic of a low-precision forward pass.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    auto = AutoModelForSequenceClassification if probe.reward else AutoModelForCausalLM
    model = auto.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").to(device)
    model.eval()
    try:
        outputs = (batched_rewards if probe.reward else compute_logits)(model, probe.inputs)
        return probe.compare(reference, outputs, tolerance)
    finally:
        del model


def _adapter_tensors(folder: Path) -> list[tuple[str, Any]]:
    """Every tensor of a PEFT adapter folder (adapters are small: read at once)."""
    import torch

    safe, legacy = folder / "adapter_model.safetensors", folder / "adapter_model.bin"
    if safe.is_file():
        from safetensors.torch import load_file

        return list(load_file(str(safe)).items())
    if legacy.is_file():
        return list(torch.load(legacy, map_location="cpu", weights_only=True).items())
    return []


def check_finite(named: list[tuple[str, Any]], what: str, where: str) -> None:
    """Raise ExportError naming the tensors of ``what`` that hold NaN or inf."""
    from tunelab.export.errors import ExportError

    problem = describe_non_finite(non_finite_tensors(named), len(named))
    if problem:
        raise ExportError(
            f"{what} has non-finite weights: {problem}", where=where,
            hint="training diverged (often a learning rate too high): export an earlier "
                 "checkpoint-N whose weights are finite, or retrain with a lower learning_rate; "
                 "nothing was written to export_dir")


def check_adapters_finite(adapters: list[str]) -> None:
    """Refuse, before the base is loaded, an adapter whose weights hold NaN or inf."""
    for adapter in adapters:
        folder = Path(adapter)
        name = "adapter_model.safetensors" if (folder / "adapter_model.safetensors").is_file() \
            else "adapter_model.bin"
        check_finite(_adapter_tensors(folder), f"adapter {adapter}", str(folder / name))
