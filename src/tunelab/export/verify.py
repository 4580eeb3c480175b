"""Check an export: reload the folder and compare its logits with base+adapter on a few prompts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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


@dataclass
class VerifyReport:
    """How closely the reloaded export reproduces the reference model (base + adapters).

    Three checks: the merged weights give base+adapter's logits (``merge_rel_diff``, before the
    dtype cast), the files hold exactly the weights in memory (``weights_match``), and the folder
    reloaded with plain transformers gives the reference logits within the dtype's tolerance.
    """

    max_abs_diff: float
    max_rel_diff: float
    tolerance: float
    greedy_agreement: float
    prompts: int
    tokens: int
    merge_rel_diff: float | None = None
    merge_tolerance: float = MERGE_TOLERANCE
    weights_match: bool = True

    @property
    def merge_ok(self) -> bool:
        return self.merge_rel_diff is None or self.merge_rel_diff <= self.merge_tolerance

    @property
    def passed(self) -> bool:
        return self.max_rel_diff <= self.tolerance and self.merge_ok and self.weights_match

    def describe(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        parts = [f"verification {verdict}: max |logit difference| {self.max_abs_diff:.3g} "
                 f"({self.max_rel_diff:.3g} of the largest logit; tolerance {self.tolerance:.3g}) "
                 f"over {self.tokens} tokens of {self.prompts} prompts; greedy next token agrees at "
                 f"{100 * self.greedy_agreement:.1f}% of positions"]
        if self.merge_rel_diff is not None:
            parts.append(f"merge before the dtype cast: {self.merge_rel_diff:.3g} "
                         f"(tolerance {self.merge_tolerance:.3g})")
        parts.append("saved files hold exactly the merged weights" if self.weights_match
                     else "saved files DIFFER from the merged weights")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


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
    """Largest absolute and relative logit difference, and how often the argmax agrees."""
    max_abs = scale = 0.0
    agree = total = 0
    for ref, out in zip(reference, exported, strict=True):
        max_abs = max(max_abs, float((ref - out).abs().max()))
        scale = max(scale, float(ref.abs().max()))
        agree += int((ref.argmax(-1) == out.argmax(-1)).sum())
        total += ref.shape[0]
    return VerifyReport(max_abs_diff=max_abs, max_rel_diff=max_abs / max(scale, 1e-12),
                        tolerance=tolerance, greedy_agreement=agree / max(total, 1),
                        prompts=len(reference), tokens=total)


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
        if own is None or not torch.equal(own.detach().cpu(), saved):
            return False
        seen += 1
    return seen > 0


def verify_export(folder: str, reference: list[Any], inputs: list[list[int]], tolerance: float,
                  device: str = "cpu") -> VerifyReport:
    """Reload ``folder`` with plain ``AutoModelForCausalLM`` and compare with ``reference``.

    The export is reloaded in float32 so the difference measures what was written (merge and
    dtype rounding), not the arithmetic of a low-precision forward pass.
    """
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                 attn_implementation="eager").to(device)
    model.eval()
    try:
        return compare_logits(reference, compute_logits(model, inputs), tolerance)
    finally:
        del model
