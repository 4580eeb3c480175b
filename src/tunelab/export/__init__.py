"""Export a trained model: merge adapters (QLoRA included), shard, verify, Modelfile, GGUF, hub.

``run_export(cfg)`` does it all from a recipe; the modules below are usable on their own:
``size.parse_size``, ``gguf_llama.write_gguf`` / ``inspect_gguf``, ``modelfile.render_modelfile``.
"""

from tunelab.export.errors import ExportError
from tunelab.export.size import parse_size
from tunelab.export.workflow import ExportResult, run_export

__all__ = ["ExportError", "ExportResult", "parse_size", "run_export"]
