"""Write a llama-architecture Hugging Face export as a GGUF file (f32, f16, bf16, q8_0), and read one back.

The layout follows llama.cpp's own converter: q/k projections are permuted from Hugging Face's
rotate-half rope layout to llama.cpp's interleaved one, 1-D tensors stay float32, and a matrix
whose rows do not divide into 32-value blocks falls back to f16 under q8_0.

Checked against llama.cpp itself (llama-cpp-python 0.3.36, built from source): same tokens,
logits within 0.13% (f16) of transformers, same greedy tokens; see tests/test_export_gguf.py,
which skips that test where llama-cpp-python is not installed. Ollama was not run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab.errors import ModelError

# Hugging Face model classes llama.cpp runs as "llama" (same tensors, same rope layout).
LLAMA_CLASSES = ("LlamaForCausalLM", "MistralForCausalLM")


@dataclass
class GGUFSummary:
    """What was written, as read back from the file."""

    path: Path
    qtype: str
    tensor_count: int
    tensors: dict[str, tuple[list[int], str]]
    metadata: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def check_gguf_supported(config: dict[str, Any]) -> None:
    """Fail before any work when the architecture is not one this writer knows."""
    archs = config.get("architectures") or []
    if not any(a in LLAMA_CLASSES for a in archs):
        raise ModelError(f"GGUF export supports llama-family models ({', '.join(LLAMA_CLASSES)}); "
                         f"this one is {', '.join(archs) or 'unknown'}", where="key 'export_gguf'",
                         hint="remove export_gguf and convert the exported folder with llama.cpp's "
                              "convert_hf_to_gguf.py, which knows more architectures")
    rope = _rope_parameters(config)
    if rope.get("rope_type", "default") not in ("default", "linear", "llama3"):
        raise ModelError(f"rope type {rope.get('rope_type')!r} is not supported by the GGUF writer",
                         where="key 'export_gguf'", hint="convert with llama.cpp's convert_hf_to_gguf.py")


def _rope_parameters(config: dict[str, Any]) -> dict[str, Any]:
    """transformers 5 keeps theta and scaling in rope_parameters; older configs split them."""
    rope = dict(config.get("rope_parameters") or config.get("rope_scaling") or {})
    rope.setdefault("rope_theta", config.get("rope_theta", 10000.0))
    rope["rope_type"] = rope.get("rope_type") or rope.get("type") or "default"
    return rope


def write_gguf(folder: Path, out_path: Path, qtype: str, tokenizer: Any, name: str) -> GGUFSummary:
    """Convert the Hugging Face export in ``folder`` to ``out_path``; returns the read-back summary."""
    import json

    import gguf

    from tunelab.export.gguf_vocab import read_vocab
    from tunelab.export.save import iter_saved_tensors

    config = json.loads((folder / "config.json").read_text())
    check_gguf_supported(config)
    vocab = read_vocab(folder, tokenizer, config["vocab_size"])
    writer = gguf.GGUFWriter(str(out_path), "llama", use_temp_file=True)
    _write_hparams(writer, config, qtype, name)
    _write_vocab(writer, vocab)
    expected = _write_tensors(writer, config, iter_saved_tensors(folder), qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    summary = inspect_gguf(out_path)
    summary.qtype, summary.notes = qtype, vocab.notes
    _check_read_back(summary, expected)
    return summary


def _write_hparams(writer: Any, config: dict[str, Any], qtype: str, name: str) -> None:
    import gguf

    heads, hidden = config["num_attention_heads"], config["hidden_size"]
    head_dim = config.get("head_dim") or hidden // heads
    rope = _rope_parameters(config)
    writer.add_name(name)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(hidden)
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(config.get("num_key_value_heads") or heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(rope["rope_theta"]))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    writer.add_vocab_size(config["vocab_size"])
    if head_dim != hidden // heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    if rope["rope_type"] == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))
    writer.add_file_type(_file_types()[qtype])


def _file_types() -> dict[str, Any]:
    """GGUF file-type codes by export type (built on call: importing gguf pulls in numpy)."""
    from gguf import LlamaFileType

    return {"f32": LlamaFileType.ALL_F32, "f16": LlamaFileType.MOSTLY_F16,
            "bf16": LlamaFileType.MOSTLY_BF16, "q8_0": LlamaFileType.MOSTLY_Q8_0}


def _write_vocab(writer: Any, vocab: Any) -> None:
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.token_types)
    writer.add_token_merges(vocab.merges)
    setters = {"bos": writer.add_bos_token_id, "eos": writer.add_eos_token_id,
               "pad": writer.add_pad_token_id, "unk": writer.add_unk_token_id,
               "eot": writer.add_eot_token_id}
    for role, token_id in vocab.special_ids.items():
        setters[role](token_id)
    writer.add_add_bos_token(vocab.add_bos)
    if vocab.chat_template:
        writer.add_chat_template(vocab.chat_template)


def permute_for_llama_cpp(weight: Any, n_head: int) -> Any:
    """Reorder q/k rows from HF's rotate-half rope layout to llama.cpp's interleaved pairs."""
    rows = weight.shape[0]
    return (weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:])
            .swapaxes(1, 2).reshape(weight.shape))


def _write_tensors(writer: Any, config: dict[str, Any], tensors: Any, qtype: str) -> dict[str, list[int]]:
    """Add every weight under its GGUF name; returns name -> HF-order shape for the read-back check."""
    import gguf

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config["num_hidden_layers"])
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    expected: dict[str, list[int]] = {}
    for hf_name, tensor in tensors:
        if hf_name.endswith("rotary_emb.inv_freq"):
            continue
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ModelError(f"no GGUF name for tensor {hf_name}", where="key 'export_gguf'",
                             hint="convert with llama.cpp's convert_hf_to_gguf.py")
        array = tensor.float().numpy()
        if hf_name.endswith("q_proj.weight"):
            array = permute_for_llama_cpp(array, heads)
        elif hf_name.endswith("k_proj.weight"):
            array = permute_for_llama_cpp(array, kv_heads)
        _add_tensor(writer, name, array, qtype)
        expected[name] = list(array.shape)
    rope_freqs = _llama3_rope_factors(config)
    if rope_freqs is not None:
        _add_tensor(writer, "rope_freqs.weight", rope_freqs, "f32")
        expected["rope_freqs.weight"] = list(rope_freqs.shape)
    return expected


def _add_tensor(writer: Any, name: str, array: Any, qtype: str) -> None:
    import gguf
    import numpy as np

    target = _tensor_type(array, qtype)
    if target == gguf.GGMLQuantizationType.F32:
        writer.add_tensor(name, array.astype(np.float32))
    elif target == gguf.GGMLQuantizationType.F16:
        writer.add_tensor(name, array.astype(np.float16))
    else:
        data = gguf.quants.quantize(array.astype(np.float32), target)
        writer.add_tensor(name, data, raw_shape=data.shape, raw_dtype=target)


def _tensor_type(array: Any, qtype: str) -> Any:
    """The storage type of one tensor: 1-D tensors stay f32; q8_0 needs rows in 32-value blocks."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    if array.ndim < 2 or qtype == "f32":
        return GGMLQuantizationType.F32
    if qtype == "f16":
        return GGMLQuantizationType.F16
    target = {"bf16": GGMLQuantizationType.BF16, "q8_0": GGMLQuantizationType.Q8_0}[qtype]
    block = GGML_QUANT_SIZES[target][0]
    return target if array.shape[-1] % block == 0 else GGMLQuantizationType.F16


def _llama3_rope_factors(config: dict[str, Any]) -> Any:
    """llama.cpp's rope_freqs tensor for llama-3.1-style rope scaling (None otherwise)."""
    if _rope_parameters(config)["rope_type"] != "llama3":
        return None
    import numpy as np
    from transformers import AutoConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    hf_config = AutoConfig.for_model(**config)
    scaled, _ = ROPE_INIT_FUNCTIONS["llama3"](hf_config, "cpu")
    theta = float(_rope_parameters(config)["rope_theta"])
    dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    base = 1.0 / (theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    return (base / scaled.double().numpy()).astype(np.float32)


def inspect_gguf(path: Path) -> GGUFSummary:
    """Tensor names, shapes (Hugging Face order) and types, and scalar metadata of a GGUF file."""
    from gguf import GGUFReader, GGUFValueType

    reader = GGUFReader(str(path))
    tensors = {t.name: ([int(d) for d in reversed(t.shape.tolist())], t.tensor_type.name)
               for t in reader.tensors}
    metadata = {}
    for key, fld in reader.fields.items():
        if fld.types and fld.types[0] != GGUFValueType.ARRAY:
            metadata[key] = fld.contents()
        elif fld.types:
            metadata[key] = f"<array of {len(fld.data)}>"
    return GGUFSummary(path=Path(path), qtype="", tensor_count=len(reader.tensors), tensors=tensors,
                       metadata=metadata)


def _check_read_back(summary: GGUFSummary, expected: dict[str, list[int]]) -> None:
    got = {name: shape for name, (shape, _) in summary.tensors.items()}
    if got != expected:
        missing = sorted(set(expected) - set(got))
        wrong = sorted(n for n in set(expected) & set(got) if expected[n] != got[n])
        raise ModelError(f"GGUF read-back mismatch: missing {missing[:5]}, wrong shape {wrong[:5]}",
                         where=str(summary.path))
