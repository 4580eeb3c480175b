"""`tunelab data` as a user runs it: real subprocesses on a temporary dataset folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def tunelab(*args, cwd, home) -> subprocess.CompletedProcess:
    env = {**os.environ, "TUNELAB_HOME": str(home), "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "tunelab", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def workdir(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "dataset_info.json").write_text(json.dumps({
        "good": {"file_name": "good.json"},
        "mixed": {"file_name": "mixed.jsonl", "formatting": "sharegpt"}}))
    (data / "good.json").write_text(json.dumps([{"instruction": "Hi {{name}}", "output": "Hello!"}]))
    rows = [{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},
            {"conversations": [{"from": "human", "value": "q"}, {"from": "human", "value": "q"}]}]
    (data / "mixed.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n{oops\n")
    return tmp_path


def test_validate_exit_codes_and_row_reasons(workdir):
    clean = tunelab("data", "validate", "good", cwd=workdir, home=workdir / "home")
    assert clean.returncode == 0, clean.stderr
    assert "good: 1/1 rows usable" in clean.stdout
    bad = tunelab("data", "validate", "good", "mixed", cwd=workdir, home=workdir / "home")
    assert bad.returncode == 1
    assert "data/mixed.jsonl:2: message 2 is 'human' but 'gpt' or 'function_call' was expected" in bad.stdout
    assert "data/mixed.jsonl:3: not valid JSON" in bad.stdout
    unknown = tunelab("data", "validate", "goood", cwd=workdir, home=workdir / "home")
    assert unknown.returncode == 2 and "did you mean 'good'" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_validate_reads_dataset_keys_and_refuses_to_check_nothing(workdir):
    """`dataset=NAME` names what is checked, as in a recipe; with no name at all it is an error,
    not a silent "all rows are usable"."""
    bad = tunelab("data", "validate", "dataset=mixed", cwd=workdir, home=workdir / "home")
    assert bad.returncode == 1 and "data/mixed.jsonl:3: not valid JSON" in bad.stdout
    both = tunelab("data", "validate", "good", "eval_dataset=mixed", cwd=workdir, home=workdir / "home")
    assert both.returncode == 1 and "good: 1/1 rows usable" in both.stdout
    assert "problems in: mixed" in both.stdout
    unknown = tunelab("data", "validate", "dataset=nothere", cwd=workdir, home=workdir / "home")
    assert unknown.returncode == 2 and "'nothere' is not registered" in unknown.stderr
    nothing = tunelab("data", "validate", cwd=workdir, home=workdir / "home")
    assert nothing.returncode == 2 and "no dataset to validate" in nothing.stderr
    assert "Traceback" not in nothing.stderr


def test_list_and_preview(workdir, tiny_chat_path):
    listing = tunelab("data", "list", cwd=workdir, home=workdir / "home")
    assert listing.returncode == 0 and "mixed" in listing.stdout and "sharegpt" in listing.stdout
    plain = tunelab("data", "preview", "good", "placeholders.name=Tuney", "--no-model",
                    cwd=workdir, home=workdir / "home")
    assert plain.returncode == 0, plain.stderr
    assert "[user] Hi Tuney" in plain.stdout and "tokens:" not in plain.stdout
    shown = tunelab("data", "preview", "mixed", "--model", str(tiny_chat_path), "--template", "chatml",
                    cwd=workdir, home=workdir / "home")
    assert shown.returncode == 0, shown.stderr
    assert "[[a<|im_end|>\n]]" in shown.stdout and "<|im_start|>user\nq<|im_end|>" in shown.stdout
    assert "skipped: message 2 is 'human'" in shown.stdout


@pytest.mark.parametrize("action", ["validate", "preview"])
def test_stage_choices_are_the_implemented_stages(workdir, action):
    """Only stages training accepts are offered; a planned one is refused up front."""
    from tunelab.data.kinds import SAMPLE_KINDS
    from tunelab.train.stages import IMPLEMENTED_STAGES

    planned = next((s for s in SAMPLE_KINDS if s not in IMPLEMENTED_STAGES), "rlhf")
    helped = tunelab("data", action, "--help", cwd=workdir, home=workdir / "home")
    assert "--stage {" + ",".join(IMPLEMENTED_STAGES) + "}" in helped.stdout
    extra = ["--no-model"] if action == "preview" else []
    refused = tunelab("data", action, "good", "--stage", planned, *extra, cwd=workdir,
                      home=workdir / "home")
    assert refused.returncode == 2
    offered = ", ".join(f"'{s}'" for s in IMPLEMENTED_STAGES)
    assert f"argument --stage: invalid choice: '{planned}' (choose from {offered})" in refused.stderr
    train = tunelab("train", f"stage={planned}", "dataset=good", cwd=workdir, home=workdir / "home")
    assert train.returncode != 0  # the same set:
    assert f"allowed: one of: {', '.join(IMPLEMENTED_STAGES)}" in train.stderr
    no_data = tunelab("train", "model_name_or_path=tunelab/tiny-chat", "output_dir=run",
                      cwd=workdir, home=workdir / "home")
    assert no_data.returncode != 0 and "key 'dataset': no training dataset given" in no_data.stderr
