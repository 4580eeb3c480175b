"""Memory and time estimate of a training recipe, from the model's config.json alone.

``estimate_memory(cfg)`` prices peak accelerator memory per component and suggests recipe
changes when it does not fit; ``timing`` estimates seconds per step from a device table or a
short calibration run; ``explain_oom`` turns an out-of-memory failure into advice. Everything
here returns data or message strings: nothing prints, and changes are named by recipe key.
"""

from tunelab.estimate.advice import Suggestion, explain_oom, format_change, is_oom_error
from tunelab.estimate.memory import (
    MemoryEstimate,
    detect_device_memory,
    estimate_memory,
    estimate_plan,
    model_shape,
    parse_size,
)

__all__ = [
    "MemoryEstimate", "Suggestion", "detect_device_memory", "estimate_memory", "estimate_plan",
    "explain_oom", "format_change", "is_oom_error", "model_shape", "parse_size",
]
