"""TuneLab as an installed package: demo data shipped inside it, found by name from any folder.

The slow test builds a wheel from this checkout, installs it into a folder of its own and runs
`tunelab train` then `tunelab chat` from an empty directory, with the checkout's ``src/`` off the
path, so nothing can quietly read the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tunelab
from tunelab.data.registry import data_path, resolve
from tunelab.errors import DataError
from tunelab.resources import demo_data_dir

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- where a dataset name is found

def test_a_demo_name_resolves_to_the_packaged_file_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./data here
    spec = resolve("identity", "data")[0]
    assert data_path(spec, "data") == demo_data_dir() / "identity.json"
    assert demo_data_dir() == Path(tunelab.__file__).parent / "resources" / "data"


def test_the_users_dataset_dir_wins_over_the_packaged_demo(tmp_path):
    from tunelab.config.data import DataArgs
    from tunelab.data.report import load_samples

    mine = tmp_path / "data"
    mine.mkdir()
    (mine / "dataset_info.json").write_text(json.dumps({"identity": {"file_name": "who.json"}}))
    (mine / "who.json").write_text(json.dumps([{"instruction": "who?", "output": "my own row"}]))
    spec = resolve(["identity", "alpaca_en_demo"], mine)
    assert data_path(spec[0], mine) == mine / "who.json"
    assert data_path(spec[1], mine) == demo_data_dir() / "alpaca_en_demo.json"
    samples, _ = load_samples(DataArgs(dataset_dir=str(mine)), ["identity"], "sft")
    assert [m.content for m in samples[0].messages] == ["who?", "my own row"]


def test_a_name_in_neither_place_names_both(tmp_path):
    mine = tmp_path / "data"
    mine.mkdir()
    (mine / "dataset_info.json").write_text(json.dumps({"mine": {"file_name": "m.json"}}))
    with pytest.raises(DataError) as err:
        resolve("identiti", mine)
    text = str(err.value)
    assert str(mine / "dataset_info.json") in text
    assert str(demo_data_dir() / "dataset_info.json") in text
    assert "did you mean 'identity'" in text
    assert "registered in " + str(mine / "dataset_info.json") + ": mine;" in text
    with pytest.raises(DataError) as err:
        resolve("nope", tmp_path / "absent")
    assert "(no such file)" in str(err.value)


# ---------------------------------------------------------------- the installed wheel

def _build_wheel(tmp_path: Path) -> Path:
    """A wheel of this checkout, built from a copy (a build in place would leave egg-info in src/)."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(dist), str(tree)], check=True, timeout=300)
    (wheel,) = dist.glob("tunelab-*.whl")
    return wheel


def _install(wheel: Path, target: Path) -> None:
    # --target with --no-deps: the wheel's own files only; its dependencies come from the
    # interpreter's environment (torch & co. are too big to install again per test).
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                    "--target", str(target), str(wheel)], check=True, timeout=300)


@pytest.mark.slow
def test_installed_wheel_trains_and_chats_from_an_empty_folder(tmp_path):
    site = tmp_path / "site"
    _install(_build_wheel(tmp_path), site)
    work = tmp_path / "empty"
    work.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(PYTHONPATH=str(site), TUNELAB_HOME=str(tmp_path / "home"), HF_HUB_OFFLINE="1",
               OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")

    def python(*args: str) -> str:
        proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=work,
                              env=env, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    where = python("-c", "import tunelab, tunelab.resources as r; print(tunelab.__file__); "
                         "print(r.demo_data_dir())").split()
    assert Path(where[0]).is_relative_to(site) and Path(where[1]) == site / "tunelab/resources/data"
    listing = python("-m", "tunelab", "data", "list")
    assert "identity" in listing and "demo" in listing and "(no such file)" in listing
    python("-m", "tunelab", "train", "model_name_or_path=tunelab/tiny-chat", "dataset=identity",
           "finetuning_type=lora", "output_dir=run", "max_steps=2", "per_device_train_batch_size=4",
           "cutoff_len=128", "max_samples=16", "logging_steps=1", "placeholders.name=Tuney")
    manifest = json.loads((work / "run" / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert (work / "run" / "adapter_model.safetensors").is_file()
    # The built-in model was built by the installed package, from its packaged demo data.
    assert any((tmp_path / "home" / "models").glob("tunelab--tiny-chat-*/tokenizer.json"))
    answer = python("-m", "tunelab", "chat", "max_new_tokens=8", "--adapter", "run",
                    "--query", "Who are you?")
    assert answer.strip()
    assert sorted(p.name for p in work.iterdir()) == ["run"]  # nothing else written to the cwd


# ---------------------------------------------------------------- one way to do each thing

def _sources_matching(pattern: str) -> dict[str, int]:
    import re

    found = {}
    for path in sorted((ROOT / "src" / "tunelab").rglob("*.py")):
        rel = path.relative_to(ROOT / "src" / "tunelab").as_posix()
        hits = len(re.findall(pattern, path.read_text(encoding="utf-8")))
        if hits:
            found[rel] = hits
    return found


def test_each_shared_decision_is_made_in_one_place():
    assert _sources_matching(r"environ[^\n]*HF_HUB_OFFLINE") == {"hub.py": 1}
    assert _sources_matching(r"AutoTokenizer\.from_pretrained") == {"model/loader.py": 1}
    assert _sources_matching(r"def pick_device|def export_device") == {"model/loader.py": 1}
    assert _sources_matching(r'"cuda" if torch\.cuda\.is_available\(\)') == {"model/loader.py": 1}
    assert _sources_matching(r"layers\\\\?\.\(") == {"model/adapters.py": 1}
    assert _sources_matching(r'for t in [\w.]+\] == \["all"\]') == {"model/adapters.py": 1}  # lora_target: all


def test_hub_offline_reads_the_environment_like_huggingface_hub(monkeypatch):
    from tunelab.hub import hub_offline

    for value, expected in (("1", True), ("true", True), ("ON", True), ("yes", True),
                            ("0", False), ("", False), ("false", False)):
        monkeypatch.setenv("HF_HUB_OFFLINE", value)
        assert hub_offline() is expected, value
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert hub_offline() is False


# ---------------------------------------------------------------- declared dependencies are used

_IMPORT_NAMES = {"pyyaml": "yaml", "liger-kernel": "liger_kernel", "rouge-score": "rouge_score",
                 "sse-starlette": "sse_starlette"}
# Loaded for us by a library, never imported by name: why each stays declared.
_LOADED_BY_LIBRARIES = {
    "accelerate": "transformers.Trainer requires it",
    "bitsandbytes": "transformers' BitsAndBytesConfig (quantization_bit) loads it",
    "deepspeed": "transformers' Trainer loads it for the `deepspeed` recipe key",
    "liger-kernel": "transformers' Trainer applies it for the `enable_liger_kernel` recipe key",
    "trl": "the `rl` extra, for the TRL stages landing in parallel work",
    "gradio": "the `webui` extra, for the board landing in parallel work",
}
_TEST_ONLY = {"setuptools"}  # the dev extra's build tool (the wheel test runs `pip wheel`)


def _declared() -> dict[str, str]:
    """Every package in pyproject.toml -> where it is declared."""
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"dependencies": project["dependencies"], **{
        f"extra {name}": specs for name, specs in project["optional-dependencies"].items()}}
    return {re.split(r"[<>=\[ ;]", spec, maxsplit=1)[0].lower(): where
            for where, specs in groups.items() for spec in specs}


def test_every_declared_dependency_is_imported_by_our_code():
    import re

    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "src").rglob("*.py"))
    tests = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("*.py"))
    unused = []
    for package, where in _declared().items():
        if package in _LOADED_BY_LIBRARIES or (package in _TEST_ONLY and where == "extra dev"):
            continue
        module = _IMPORT_NAMES.get(package, package.replace("-", "_"))
        # the dev extra holds what the tests use; every other package must serve our code
        searched = sources + tests if where == "extra dev" else sources
        if not re.search(rf"^\s*(import|from) {module}\b", searched, re.MULTILINE):
            unused.append(f"{package} ({where})")
    assert not unused, f"declared but never imported: {unused}"
    assert "trl" not in [re.split(r"[<>=]", s)[0] for s in _project_dependencies()]


def _project_dependencies() -> list[str]:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
