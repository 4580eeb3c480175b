"""``bf16: true`` on fp32 weights autocasts our default trainer exactly as it does a plain Trainer."""

import copy

import pytest
import torch


def _train_one_step(trainer_class, model, prepared, tokenizer, out):
    """One bf16 step; returns the dtypes seen at decoder layer outputs and at the head, and the loss."""
    from transformers import TrainingArguments

    seen: dict[str, set] = {"layer": set(), "q_proj": set(), "lm_head": set()}

    def probe(kind):
        def hook(module, args, output):
            tensor = output[0] if isinstance(output, tuple) else output
            seen[kind].add(tensor.dtype)
        return hook

    inner = model.get_base_model()
    handles = [layer.register_forward_hook(probe("layer")) for layer in inner.model.layers]
    handles += [layer.self_attn.q_proj.base_layer.register_forward_hook(probe("q_proj"))
                for layer in inner.model.layers]
    handles.append(inner.lm_head.register_forward_hook(probe("lm_head")))
    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=2, max_steps=1,
                             bf16=True, use_cpu=True, logging_steps=1, save_strategy="no",
                             report_to="none", seed=7, disable_tqdm=True, remove_unused_columns=False)
    trainer = trainer_class(model=model, args=args, train_dataset=prepared.train,
                            data_collator=prepared.collator(tokenizer.pad_token_id))
    trainer.train()
    for handle in handles:
        handle.remove()
    loss = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    return seen, loss


def test_bf16_autocasts_the_chunked_loss_decoder_like_a_plain_trainer(tiny_chat_path, tmp_path):
    from transformers import Trainer

    from tunelab.config import load_config
    from tunelab.data.pipeline import prepare_datasets
    from tunelab.data.templates import apply_template
    from tunelab.model import load_model, load_tokenizer, prepare_for_training
    from tunelab.train.loss import ChunkedLossTrainer

    cfg = load_config(None, [f"model_name_or_path={tiny_chat_path}", "dataset=identity",
                             "packing=false", "cutoff_len=64", "lora_rank=4", "lora_target=all",
                             "max_samples=2", f"output_dir={tmp_path / 'run'}"])
    tokenizer = load_tokenizer(cfg.model)
    apply_template(tokenizer, None)
    prepared = prepare_datasets(cfg, tokenizer, "sft")
    torch.manual_seed(0)
    model = prepare_for_training(load_model(cfg.model), cfg)
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # fp32 weights
    plain_model = copy.deepcopy(model)

    plain_seen, plain_loss = _train_one_step(Trainer, plain_model, prepared, tokenizer, tmp_path / "p")
    ours_seen, ours_loss = _train_one_step(ChunkedLossTrainer, model, prepared, tokenizer, tmp_path / "o")
    # The reference: accelerate's autocast makes the plain Trainer's linears produce bf16.
    assert plain_seen["q_proj"] == {torch.bfloat16} and plain_seen["lm_head"] == {torch.bfloat16}
    assert ours_seen == plain_seen
    assert ours_loss == pytest.approx(plain_loss, rel=2e-2)
