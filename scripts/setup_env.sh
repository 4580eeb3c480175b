#!/usr/bin/env bash
# Create .venv and install TuneLab with the extras given as arguments (e.g. "dev,bnb").
# Picks the right torch: the CPU build on machines without an NVIDIA GPU (using a local wheel
# when the machine ships one), the default CUDA build where `nvidia-smi` sees a GPU.
# Re-running is cheap: it skips work when pyproject.toml and the extras have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-dev}"
PY="${PYTHON:-python3}"
VENV="${VENV:-.venv}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
STAMP="$VENV/.tunelab-installed"
WANT="$(cat pyproject.toml scripts/setup_env.sh | sha256sum | cut -c1-16)-$EXTRAS"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
    exit 0
fi

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: NVIDIA GPU found; installing a CUDA build of torch"
    TORCH_SPEC="torch>=2.4"
elif ls /opt/wheels/torch-2.13.0* >/dev/null 2>&1; then
    echo "setup: no GPU; installing the local CPU build of torch 2.13.0"
    TORCH_SPEC="torch==2.13.0"
else
    echo "setup: no GPU; installing torch"
    TORCH_SPEC="torch>=2.4"
fi
"$VENV/bin/python" -c "import torch" 2>/dev/null || "${PIP[@]}" install "$TORCH_SPEC"
"${PIP[@]}" install -e ".[$EXTRAS]"
# The board's browser tests drive the system Chromium through Playwright (no browser download).
case ",$EXTRAS," in *,dev,*) bash scripts/setup_chromium.sh ;; esac
echo "$WANT" > "$STAMP"
echo "setup: done ($VENV, extras: $EXTRAS)"
