"""Loss / perplexity: the engine's figure equals a plain per-sample HF forward pass by hand."""

import json
import math

import pytest
import torch

from tunelab.errors import ConfigError, DataError, ModelError
from tunelab.evaluate import evaluation_config, perplexity

from test_infer_support import random_lora_adapter


@pytest.fixture(scope="module")
def adapter_run(tiny_chat_path, tmp_path_factory):
    """A LoRA adapter (random, non-zero) inside a run folder whose manifest records how it was
    trained: evaluating it must encode the data with those keys (here its placeholders)."""
    folder = random_lora_adapter(tiny_chat_path, tmp_path_factory.mktemp("ppl") / "run")
    manifest = {"run_name": "run", "status": "completed",
                "config_given": {"placeholders": {"name": "Zorg", "author": "Lab"}, "cutoff_len": 96}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def reference_loss(base, adapter, rows):
    """Summed cross-entropy and token count, one unpadded sample at a time, by hand."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32),
                                      adapter).eval()
    total, count = 0.0, 0
    for row in rows:
        ids = torch.tensor([row["input_ids"]])
        labels = torch.tensor(row["labels"])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0].float()
        targets = labels[1:]
        keep = targets != -100
        log_probs = torch.log_softmax(logits[:-1], dim=-1)
        total += float(-log_probs[keep].gather(1, targets[keep][:, None]).sum())
        count += int(keep.sum())
    return total, count


def test_perplexity_equals_a_hand_computed_forward_pass(adapter_run, tiny_chat_path):
    from transformers import AutoTokenizer

    from tunelab.data.pipeline import prepare_datasets

    # Batches of 4 over 6 samples: padding and a short last batch are part of what is checked.
    cfg = evaluation_config(None, [str(adapter_run)], ["identity"],
                            {"max_samples": 6, "per_device_eval_batch_size": 4})
    result = perplexity(cfg)

    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_path)
    rows = list(prepare_datasets(cfg, tokenizer, "sft").train)
    total, count = reference_loss(tiny_chat_path, adapter_run, rows)
    assert result.samples == len(rows) == 6
    assert result.tokens == count
    assert result.loss == pytest.approx(total / count, rel=1e-5)
    assert result.perplexity == pytest.approx(math.exp(total / count), rel=1e-5)
    # The run's own placeholders were used: the scored tokens are the trained answer's.
    scored = [t for t, label in zip(rows[0]["input_ids"], rows[0]["labels"]) if label != -100]
    assert "I am Zorg, an AI assistant built by Lab." in tokenizer.decode(scored)


def test_bad_requests_name_what_is_wrong(adapter_run, tmp_path):
    with pytest.raises(ConfigError, match="dataset"):
        evaluation_config(None, [str(adapter_run)], [])
    with pytest.raises(DataError, match="no_such_set"):
        perplexity(evaluation_config(None, [str(adapter_run)], ["no_such_set"]))
    with pytest.raises(ModelError, match="adapter_config.json|does not exist"):
        perplexity(evaluation_config(None, [str(tmp_path / "missing")], ["identity"]))
