"""Our SFT path computes the same loss and gradients as a plain HF Trainer + PEFT set-up."""

import json
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def plain_encode(tokenizer, question, answer):
    """The textbook recipe: prompt via the chat template, labels only on the answer turn."""
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": question}],
                                           add_generation_prompt=True, tokenize=True)["input_ids"]
    full = tokenizer.apply_chat_template([{"role": "user", "content": question},
                                          {"role": "assistant", "content": answer}],
                                         tokenize=True)["input_ids"]
    assert full[: len(prompt)] == prompt
    labels = [-100] * len(prompt) + full[len(prompt):]
    return {"input_ids": full, "labels": labels}


def test_sft_loss_and_step_match_plain_trainer_with_peft(tiny_chat_path, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from tunelab.config import load_config
    from tunelab.data.collate import PaddingCollator
    from tunelab.data.pipeline import prepare_datasets
    from tunelab.data.templates import apply_template
    from tunelab.model import load_model, load_tokenizer, prepare_for_training

    cfg = load_config(None, [f"model_name_or_path={tiny_chat_path}", "dataset=identity",
                             f"dataset_dir={ROOT / 'data'}", "packing=false", "cutoff_len=128",
                             "lora_rank=8", "lora_alpha=16", "lora_target=all",
                             "placeholders.name=Tuney", "placeholders.author=TuneLab",
                             f"output_dir={tmp_path / 'run'}"])
    tokenizer = load_tokenizer(cfg.model)
    apply_template(tokenizer, None)
    ours_rows = [prepared_row for prepared_row in prepare_datasets(cfg, tokenizer, "sft").train][:4]

    rows = json.loads((ROOT / "data" / "identity.json").read_text())
    plain_rows = {}
    for row in rows:
        answer = row["output"].replace("{{name}}", "Tuney").replace("{{author}}", "TuneLab")
        encoded = plain_encode(tokenizer, row["instruction"], answer)
        plain_rows[tuple(encoded["input_ids"])] = encoded
    plain_batch_rows = [plain_rows[tuple(r["input_ids"])] for r in ours_rows]
    assert [p["labels"] for p in plain_batch_rows] == [list(r["labels"]) for r in ours_rows]

    torch.manual_seed(0)
    ours = prepare_for_training(load_model(cfg.model), cfg)
    torch.manual_seed(0)
    plain = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_chat_path),
                           LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16,
                                      target_modules="all-linear"))
    ours_batch = PaddingCollator(pad_token_id=tokenizer.pad_token_id)(
        [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in ours_rows])
    plain_batch = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)(plain_batch_rows)
    trainer = Trainer(model=plain, args=TrainingArguments(output_dir=str(tmp_path / "plain"),
                                                          use_cpu=True, report_to="none"))

    for step in range(2):
        ours_loss = ours(**ours_batch).loss
        plain_loss = trainer.compute_loss(plain, dict(plain_batch))
        assert ours_loss.item() == pytest.approx(plain_loss.item(), rel=1e-6, abs=1e-6), step
        for model, loss in ((ours, ours_loss), (plain, plain_loss)):
            loss.backward()
            with torch.no_grad():
                for param in model.parameters():
                    if param.grad is not None:
                        param -= 0.05 * param.grad
                        param.grad = None
    assert {n for n, p in ours.named_parameters() if p.requires_grad} == \
        {n for n, p in plain.named_parameters() if p.requires_grad}


def _train_two_steps(trainer_class, model, prepared, tokenizer, out, padding_free):
    from transformers import TrainingArguments

    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=2,
                             gradient_accumulation_steps=3, max_steps=2, learning_rate=0.5,
                             optim="sgd", lr_scheduler_type="constant", max_grad_norm=0,
                             logging_steps=1, save_strategy="no", report_to="none", use_cpu=True,
                             seed=7, disable_tqdm=True, remove_unused_columns=False)
    trainer = trainer_class(model=model, args=args, train_dataset=prepared.train,
                            data_collator=prepared.collator(tokenizer.pad_token_id,
                                                            padding_free=padding_free))
    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    return losses, {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("padding_free", [False, True], ids=["padded", "padding-free"])
def test_chunked_loss_trainer_matches_a_plain_trainer_with_accumulation(tiny_chat_path, tmp_path,
                                                                        padding_free):
    """Our default trainer (chunked loss) and a plain HF Trainer (the model's own loss) take the
    same SGD steps over 3 accumulated micro-batches of different lengths: same losses, weights."""
    import copy

    from transformers import Trainer

    from tunelab.config import load_config
    from tunelab.data.pipeline import prepare_datasets
    from tunelab.data.templates import apply_template
    from tunelab.model import load_model, load_tokenizer, prepare_for_training
    from tunelab.train.loss import ChunkedLossTrainer

    cfg = load_config(None, [f"model_name_or_path={tiny_chat_path}", "dataset=identity",
                             "packing=false", "cutoff_len=128", "lora_rank=8", "lora_target=all",
                             "additional_target=lm_head", "max_samples=12",
                             f"output_dir={tmp_path / 'run'}"])
    tokenizer = load_tokenizer(cfg.model)
    apply_template(tokenizer, None)
    prepared = prepare_datasets(cfg, tokenizer, "sft")
    torch.manual_seed(0)
    model = prepare_for_training(load_model(cfg.model), cfg)
    for name, param in model.named_parameters():  # non-zero LoRA B, so every path has a gradient
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.05)
    start = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    plain_model = copy.deepcopy(model)

    ours, ours_weights = _train_two_steps(ChunkedLossTrainer, model, prepared, tokenizer,
                                          tmp_path / "ours", padding_free)
    plain, plain_weights = _train_two_steps(Trainer, plain_model, prepared, tokenizer,
                                            tmp_path / "plain", padding_free)
    assert len(ours) == len(plain) == 2
    assert ours == pytest.approx(plain, rel=1e-5)
    for name, weight in plain_weights.items():
        assert not torch.equal(weight, start[name]), name  # the step reached every parameter
        torch.testing.assert_close(ours_weights[name], weight, rtol=1e-4, atol=1e-6, msg=name)
