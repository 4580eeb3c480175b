"""The registry of training stages this version implements (config's `stage` choices read it)."""

IMPLEMENTED_STAGES: tuple[str, ...] = ("pt", "sft")
