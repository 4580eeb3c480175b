"""Our SFT path computes the same loss and gradients as a plain HF Trainer + PEFT set-up."""

import json

import pytest
import torch

from tunelab.resources import demo_data_dir


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
                             "packing=false", "cutoff_len=128",
                             "lora_rank=8", "lora_alpha=16", "lora_target=all",
                             "placeholders.name=Tuney", "placeholders.author=TuneLab",
                             f"output_dir={tmp_path / 'run'}"])
    tokenizer = load_tokenizer(cfg.model)
    apply_template(tokenizer, None)
    ours_rows = [prepared_row for prepared_row in prepare_datasets(cfg, tokenizer, "sft").train][:4]

    rows = json.loads((demo_data_dir() / "identity.json").read_text())
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
