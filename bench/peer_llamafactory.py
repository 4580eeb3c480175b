"""LLaMA-Factory as a peer in bench_train.py: its own virtual environment, its recipe for the same
model, data and settings, and one run through ``llamafactory_driver.py``.

LLaMA-Factory pins transformers, peft, trl, datasets and gradio to versions that clash with
ours, so it lives in a venv of its own (default ``~/.cache/tunelab-bench/llamafactory-VERSION``),
installed from the package index on first use, with the same torch release as ours (2.13.0 here:
pip takes the CPU wheel from this machine's disk; on a GPU machine the index's CUDA build).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

VERSION = "0.9.5"
HERE = Path(__file__).resolve().parent
DRIVER = HERE / "llamafactory_driver.py"
MARKER = "LLAMAFACTORY_RESULT "
DATASETS = ("alpaca_en_demo", "alpaca_zh_demo")
# No torchaudio build matches torch 2.13.0 CPU and torchvision's wheel expects a CUDA torch, yet
# LLaMA-Factory imports torchaudio at start-up (for audio data only). The venv gets this module
# instead; text SFT never touches it.
TORCHAUDIO_STANDIN = '''"""Stand-in written by TuneLab's bench/peer_llamafactory.py: no torchaudio build matches
torch 2.13.0 CPU, and LLaMA-Factory imports torchaudio at start-up for audio data only."""


def __getattr__(name):
    raise ImportError(f"torchaudio.{name}: torchaudio is not installed in this benchmark venv")
'''


def default_venv() -> Path:
    return Path("~/.cache/tunelab-bench").expanduser() / f"llamafactory-{VERSION}"


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def is_ready(venv: Path) -> bool:
    python = venv_python(venv)
    if not python.is_file():
        return False
    probe = subprocess.run([str(python), "-c", "import llamafactory; print(llamafactory.__version__)"],
                           capture_output=True, text=True)
    return probe.returncode == 0 and probe.stdout.strip() == VERSION


def our_torch() -> str:
    """The torch release TuneLab runs on (2.13.0 for 2.13.0+cpu): the peer gets the same one."""
    from importlib.metadata import version

    return version("torch").split("+")[0]


def install_commands(venv: Path) -> list[list[str]]:
    """What ``ensure_venv`` runs."""
    python = str(venv_python(venv))
    return [[sys.executable, "-m", "venv", str(venv)],
            [python, "-m", "pip", "install", f"torch=={our_torch()}", f"llamafactory=={VERSION}"],
            [python, "-m", "pip", "uninstall", "-y", "torchvision", "torchaudio"]]


def ensure_venv(venv: Path) -> Path:
    """LLaMA-Factory's venv, installed first if it is missing or holds another version."""
    if is_ready(venv):
        return venv_python(venv)
    print(f"installing llamafactory=={VERSION} into {venv} (once)", file=sys.stderr, flush=True)
    for command in install_commands(venv):
        subprocess.run(command, check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "torchaudio").mkdir(exist_ok=True)
    (site / "torchaudio" / "__init__.py").write_text(TORCHAUDIO_STANDIN)
    if not is_ready(venv):
        raise SystemExit(f"llamafactory=={VERSION} does not import in {venv}")
    return venv_python(venv)


def write_dataset_dir(folder: Path) -> Path:
    """A LLaMA-Factory dataset folder holding our two alpaca demo files and their entries."""
    from tunelab.resources import demo_data_dir

    source = Path(demo_data_dir())
    info = json.loads((source / "dataset_info.json").read_text(encoding="utf-8"))
    folder.mkdir(parents=True, exist_ok=True)
    for name in DATASETS:
        shutil.copy(source / info[name]["file_name"], folder / info[name]["file_name"])
    entries = {name: info[name] for name in DATASETS}
    (folder / "dataset_info.json").write_text(json.dumps(entries, indent=2), encoding="utf-8")
    return folder


def recipe(model_dir: str, data_dir: Path, out_dir: Path, opts, extra: list[str]) -> dict:
    """LLaMA-Factory's recipe for the setting bench_train.py runs (its defaults for the rest:
    gradient checkpointing on, no packing, padding to a multiple of 8)."""
    keys = {
        "model_name_or_path": model_dir, "stage": "sft", "do_train": True,
        "finetuning_type": opts.finetuning, "bf16": opts.bf16,
        "dataset": ",".join(DATASETS), "dataset_dir": str(data_dir), "template": "chatml",
        "cutoff_len": opts.cutoff, "max_samples": opts.rows // 2, "overwrite_cache": True,
        "per_device_train_batch_size": opts.batch, "gradient_accumulation_steps": 1,
        "num_train_epochs": opts.epochs, "learning_rate": 1.0e-4, "logging_steps": 1000,
        "save_strategy": "no", "report_to": "none", "output_dir": str(out_dir),
        "overwrite_output_dir": True, "plot_loss": False, "seed": 0, "disable_tqdm": True,
    }
    if opts.finetuning == "lora":
        keys.update(lora_rank=8, lora_target="all")
    for item in extra:
        key, _, value = item.partition("=")
        keys[key] = {"true": True, "false": False}.get(value, value)
    return keys


def run(opts, extra: list[str], tmp: str) -> dict:
    """One LLaMA-Factory run in its venv; the driver's measurements."""
    import yaml
    from tunelab.model import resolve_model_path

    python = ensure_venv(Path(opts.venv))
    work = Path(tmp)
    keys = recipe(resolve_model_path(opts.model), write_dataset_dir(work / "lf-data"),
                  work / "lf-out", opts, extra)
    recipe_path = work / "llamafactory.yaml"
    recipe_path.write_text(yaml.safe_dump(keys, sort_keys=False), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", DISABLE_VERSION_CHECK="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([str(python), str(DRIVER), str(recipe_path)], capture_output=True,
                          text=True, env=env, cwd=work)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARKER)]
    if proc.returncode or not lines:
        raise RuntimeError(f"LLaMA-Factory failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(MARKER):])
