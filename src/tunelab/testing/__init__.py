"""Tiny Llama models and a byte-level BPE tokenizer, built offline for tests, demos and benchmarks.

``build_tiny_model(out_dir, variant="chat"|"think", size="tiny"|"bench"|dict, seed=0)`` writes a
normal Hugging Face folder; ``builtin_model_path("tunelab/tiny-chat")`` builds one once into the
TuneLab cache and returns it. Nothing is downloaded: the tokenizer is trained on the demo
datasets packaged in ``tunelab/resources/data``.
"""

from tunelab.testing.builtin import BUILTIN_MODELS, builtin_model_path, is_builtin
from tunelab.testing.factory import build_tiny_model
from tunelab.testing.tokenizer import CONTROL_TOKENS, MARKUP_TOKENS, SPECIAL_TOKENS

__all__ = [
    "BUILTIN_MODELS", "CONTROL_TOKENS", "MARKUP_TOKENS", "SPECIAL_TOKENS",
    "build_tiny_model", "builtin_model_path", "is_builtin",
]
