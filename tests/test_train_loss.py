"""The chunked loss equals transformers' own causal-LM loss, in value and in gradients."""

import pytest
import torch

from tunelab.train.loss import causal_lm_parts, chunked_loss_sum


def _batch(vocab, packed):
    torch.manual_seed(1)
    ids = torch.randint(3, vocab, (3, 40))
    labels = ids.clone()
    labels[:, :12] = -100  # a prompt
    labels[2, 30:] = -100  # right padding on one row
    batch = {"input_ids": ids, "labels": labels}
    if packed:
        positions = torch.cat([torch.arange(15), torch.arange(25)]).repeat(3, 1)
        labels[:, 15] = -100  # the first token of each packed sample is never a target
        batch["position_ids"] = positions
    return batch


@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("chunk", [7, 1024])
def test_chunked_loss_matches_the_model_loss_and_gradients(tiny_chat_path, packed, chunk):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_chat_path)
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear",
                                             modules_to_save=["lm_head"]))
    for name, param in model.named_parameters():  # make LoRA B non-zero so every path matters
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.02)
    batch = _batch(model.config.vocab_size, packed)

    reference = model(**batch).loss
    reference.backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()

    body, head = causal_lm_parts(model)
    hidden = body(**{k: v for k, v in batch.items() if k != "labels"}).last_hidden_state
    total, count = chunked_loss_sum(hidden, batch["labels"], head, chunk_tokens=chunk)
    loss = total / count
    loss.backward()
    assert count == int((batch["labels"][:, 1:] != -100).sum())
    torch.testing.assert_close(loss, reference, rtol=1e-5, atol=1e-6)
    assert expected.keys() == {n for n, p in model.named_parameters() if p.grad is not None}
    for name, grad in expected.items():
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, grad,
                                   rtol=1e-4, atol=1e-6, msg=name)


def test_soft_capped_logits_keep_the_model_loss(tiny_chat_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_chat_path)
    assert causal_lm_parts(model) is not None
    model.config.final_logit_softcapping = 30.0
    assert causal_lm_parts(model) is None
