"""Helpers shared by the infer/serve tests (no tests here): a tiny model that learned 16 distinct
answers, a random LoRA adapter for it, and a live `tunelab api` subprocess.

The answers are distinct so that a batching mix-up (a row streamed to the wrong request, a
padding bug) shows up as a wrong answer, not as a subtle logit difference.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import urllib.error
import urllib.request

NAMES = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi",
         "Ivan", "Judy", "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil"]
COLORS = ["red", "blue", "green", "black", "white", "yellow", "purple", "orange",
          "pink", "brown", "gray", "gold", "silver", "cyan", "violet", "teal"]
# Prompts of different lengths, so batched rows really are left-padded by different amounts.
PAIRS = [(f"What is the favourite colour of {name}?" + " Please answer." * (i % 4), f"{name} likes {color}.")
         for i, (name, color) in enumerate(zip(NAMES, COLORS))]


def train_distinct_answers(base: Path, out: Path, steps: int = 220) -> Path:
    """Full fine-tune of the tiny chat model until greedy decoding returns each pair's answer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    batch = _supervised_batch(tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _supervised_batch(tokenizer) -> dict:
    import torch

    rows = []
    for question, answer in PAIRS:
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                               add_generation_prompt=True)
        full = tokenizer.apply_chat_template([{"role": "user", "content": question},
                                              {"role": "assistant", "content": answer}], tokenize=False)
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        f_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
        rows.append((f_ids, len(p_ids)))
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    labels = torch.full((len(rows), width), -100)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (ids, start) in enumerate(rows):
        input_ids[i, :len(ids)] = torch.tensor(ids)
        labels[i, start:len(ids)] = torch.tensor(ids[start:])
        mask[i, :len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def random_lora_adapter(base: Path, out: Path) -> Path:
    """A LoRA adapter with random (non-zero) weights, saved like one trained elsewhere: no
    tokenizer in the folder, so the base's template is used."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    config = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj", "down_proj"],
                        init_lora_weights=False, task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(out)
    return out


def nan_lora_adapter(base: Path, out: Path) -> Path:
    """A LoRA adapter whose weights are all NaN, as a diverged training run leaves them."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                  task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_" in name:
                param.fill_(float("nan"))
    peft_model.save_pretrained(out)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def start_api(args: list[str], port: int, api_key: str | None = None) -> subprocess.Popen:
    """`tunelab api ...` on 127.0.0.1:port, returned once /health answers."""
    env = child_env()
    env.pop("TUNELAB_API_KEY", None)
    if api_key:
        env["TUNELAB_API_KEY"] = api_key
    proc = subprocess.Popen([sys.executable, "-m", "tunelab", "api", *args, "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tunelab api exited early:\n{proc.stdout.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as reply:
                if reply.status == 200:
                    return proc
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"tunelab api did not start:\n{proc.stdout.read()}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def built_once(tmp_path_factory, name: str, build) -> Path:
    """``build(path)`` once per test session, shared by every test module that asks."""
    folder = tmp_path_factory.getbasetemp() / f"infer-{name}"
    if not (folder / "done").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        build(folder)
        (folder / "done").write_text("ok")
    return folder
