"""GGUF files (f16, q8_0) read back with the gguf package, and the Ollama Modelfile.

llama.cpp itself is only exercised when llama-cpp-python is installed (optional test below).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def exported(tiny_chat_path, tmp_path_factory) -> Path:
    """The tiny model exported with both GGUF types (no adapter: the model's own weights)."""
    from tunelab.config import load_config
    from tunelab.export import run_export

    out = tmp_path_factory.mktemp("gguf") / "tiny"
    cfg = load_config(None, {"model_name_or_path": str(tiny_chat_path), "export_dir": str(out),
                             "export_gguf": "f16,q8_0", "export_verify": False})
    run_export(cfg, log=lambda line: None)
    return out


def hf_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def expected_tensor_count(config: dict) -> int:
    # token_embd + output_norm + output, and 9 tensors per block (2 norms, q k v o, gate up down)
    return 3 + 9 * config["num_hidden_layers"]


@pytest.mark.parametrize("qtype", ["f16", "q8_0"])
def test_gguf_reads_back_with_expected_tensors_and_metadata(exported, qtype):
    from tunelab.export.gguf_llama import inspect_gguf

    config = json.loads((exported / "config.json").read_text())
    summary = inspect_gguf(exported / f"tiny-{qtype}.gguf")
    assert summary.tensor_count == expected_tensor_count(config)
    meta = summary.metadata
    assert meta["general.architecture"] == "llama"
    assert meta["llama.block_count"] == config["num_hidden_layers"]
    assert meta["llama.embedding_length"] == config["hidden_size"]
    assert meta["llama.attention.head_count"] == config["num_attention_heads"]
    assert meta["llama.attention.head_count_kv"] == config["num_key_value_heads"]
    assert meta["llama.context_length"] == config["max_position_embeddings"]
    assert meta["llama.vocab_size"] == config["vocab_size"]
    assert meta["tokenizer.ggml.model"] == "gpt2"
    assert meta["tokenizer.ggml.eos_token_id"] == config["eos_token_id"]
    assert "<|im_start|>" in meta["tokenizer.chat_template"]
    assert meta["tokenizer.ggml.tokens"] == f"<array of {config['vocab_size']}>"
    shape, kind = summary.tensors["blk.0.ffn_gate.weight"]
    assert shape == [config["intermediate_size"], config["hidden_size"]]
    assert kind == {"f16": "F16", "q8_0": "Q8_0"}[qtype]
    assert summary.tensors["output_norm.weight"] == ([config["hidden_size"]], "F32")


def test_gguf_values_match_the_weights_with_llama_cpp_rope_order(exported):
    from gguf import GGUFReader
    from gguf.quants import dequantize

    from tunelab.export.gguf_llama import permute_for_llama_cpp

    config = json.loads((exported / "config.json").read_text())
    weights = hf_weights(exported)
    tensors = {t.name: t for t in GGUFReader(str(exported / "tiny-f16.gguf")).tensors}
    embed = weights["model.embed_tokens.weight"].float().numpy()
    assert np.allclose(tensors["token_embd.weight"].data.astype(np.float32), embed, atol=1e-3)
    q = weights["model.layers.0.self_attn.q_proj.weight"].float().numpy()
    permuted = permute_for_llama_cpp(q, config["num_attention_heads"])
    assert not np.allclose(permuted, q)  # the permutation really moves rows
    assert np.allclose(tensors["blk.0.attn_q.weight"].data.astype(np.float32), permuted, atol=1e-3)
    q8 = {t.name: t for t in GGUFReader(str(exported / "tiny-q8_0.gguf")).tensors}
    k = weights["model.layers.1.self_attn.k_proj.weight"].float().numpy()
    k_back = dequantize(q8["blk.1.attn_k.weight"].data, q8["blk.1.attn_k.weight"].tensor_type)
    expected = permute_for_llama_cpp(k, config["num_key_value_heads"])
    assert np.abs(k_back.reshape(expected.shape) - expected).max() < np.abs(expected).max() / 100


def test_modelfile_uses_the_gguf_and_the_chatml_template(exported):
    text = (exported / "Modelfile").read_text()
    assert "FROM ./tiny-f16.gguf" in text
    assert "<|im_start|>{{ .Role }}" in text and "{{ .Content }}<|im_end|>" in text
    assert 'PARAMETER stop "<|im_end|>"' in text


def test_modelfile_translates_llama3_and_keeps_a_default_system(tiny_chat_path):
    from transformers import AutoTokenizer

    from tunelab.export.modelfile import render_modelfile

    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_path)
    tokenizer.chat_template = (
        "{{ '<|start_header_id|>system<|end_header_id|>\\n\\nYou are Tuney.<|eot_id|>' }}"
        "{% for m in messages %}{{ '<|start_header_id|>' + m.role + '<|end_header_id|>\\n\\n' + "
        "m.content + '<|eot_id|>' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")
    text, family = render_modelfile(tokenizer, ".")
    assert family == "llama3" and "FROM ." in text
    assert "<|start_header_id|>{{ .Role }}<|end_header_id|>" in text
    assert 'SYSTEM """You are Tuney."""' in text and 'PARAMETER stop "<|eot_id|>"' in text


def test_unknown_template_is_explained_not_guessed(tiny_chat_path):
    from transformers import AutoTokenizer

    from tunelab.export.modelfile import render_modelfile

    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_path)
    tokenizer.chat_template = "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
    text, family = render_modelfile(tokenizer, "./m.gguf")
    assert family is None and "TEMPLATE" not in text.replace("add a TEMPLATE", "")
    assert "not one TuneLab can translate" in text


def test_gguf_refuses_other_architectures_before_loading_weights(tiny_chat_path, tmp_path):
    import shutil

    from tunelab.config import load_config
    from tunelab.errors import ModelError
    from tunelab.export import run_export

    base = tmp_path / "not-llama"
    shutil.copytree(tiny_chat_path, base)
    config = json.loads((base / "config.json").read_text())
    config["architectures"] = ["Qwen3ForCausalLM"]
    (base / "config.json").write_text(json.dumps(config))
    cfg = load_config(None, {"model_name_or_path": str(base), "export_dir": str(tmp_path / "o"),
                             "export_gguf": "q8_0"})
    with pytest.raises(ModelError) as err:
        run_export(cfg, log=lambda line: None)
    assert "llama-family" in err.value.problem and "convert_hf_to_gguf" in err.value.hint


def test_llama_cpp_runs_the_gguf_like_transformers(exported):
    """Optional: only where llama-cpp-python is installed (it compiles llama.cpp from source)."""
    llama_cpp = pytest.importorskip("llama_cpp")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(exported)
    ids = tokenizer("<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n",
                    add_special_tokens=False)["input_ids"]
    model = AutoModelForCausalLM.from_pretrained(exported, dtype=torch.float32).eval()
    with torch.no_grad():
        hf_logits = model(input_ids=torch.tensor([ids])).logits[0, -1].numpy()
    llm = llama_cpp.Llama(model_path=str(exported / "tiny-f16.gguf"), n_ctx=128, logits_all=True,
                          verbose=False, n_threads=1)
    assert llm.tokenize(b"Hello there", add_bos=False, special=True) == tokenizer(
        "Hello there", add_special_tokens=False)["input_ids"]
    llm.eval(ids)
    cpp_logits = np.asarray(llm.scores[len(ids) - 1])
    assert int(cpp_logits.argmax()) == int(hf_logits.argmax())
    assert np.abs(cpp_logits - hf_logits).max() < 0.05 * np.abs(hf_logits).max()
