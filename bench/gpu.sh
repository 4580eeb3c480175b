#!/usr/bin/env bash
# One command on one NVIDIA GPU: LoRA and full SFT throughput, peak GPU memory and MFU of TuneLab,
# a plain HF Trainer (+ PEFT) and LLaMA-Factory (its own venv, installed on first use), on
# random-init Qwen2.5-0.5B- and 1.5B-shaped models built from configs (no hub), bf16, interleaved
# in one run; Liger kernels and FlashAttention 2 arms where they are installed. Ends with a
# Markdown table (bench/bench_table.py) of the JSON lines it appended to --out.
#
#   bench/gpu.sh                      # everything (run from the repository root)
#   bench/gpu.sh --sizes 0.5b --methods lora --rounds 2
#   bench/gpu.sh --dry-run            # print the plan, run nothing (works without a GPU)
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/gpu.sh [options]
  --sizes LIST      model sizes, from 0.5b,1.5b          (default 0.5b,1.5b)
  --methods LIST    fine-tuning methods, from lora,full  (default lora,full)
  --rounds N        interleaved rounds per size/method   (default 2)
  --rows N          alpaca demo rows, half en, half zh (at most 600)   (default 600)
  --cutoff N        cutoff_len                           (default 1024)
  --batch N         per-device batch size                (default 8)
  --epochs N        epochs per run                       (default 3)
  --out FILE        JSON lines appended here             (default bench/gpu-results.jsonl)
  --python PATH     TuneLab's python                     (default .venv/bin/python, else python3)
  --venv DIR        LLaMA-Factory's venv                 (default ~/.cache/tunelab-bench/llamafactory-0.9.5)
  --peak-tflops X   dense bf16 peak for MFU              (default: looked up from the GPU name)
  --dry-run         print what would run, run nothing
  -h, --help        this text
EOF
}

die() { echo "bench/gpu.sh: $*" >&2; exit 2; }

positive_int() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive whole number, got '$2'"; }

check_list() {  # check_list FLAG VALUE ALLOWED...
  local flag=$1 value=$2 item; shift 2
  [[ -n "$value" ]] || die "$flag needs a value (one or more of: $*)"
  IFS=, read -ra items <<< "$value"
  for item in "${items[@]}"; do
    [[ " $* " == *" $item "* ]] || die "$flag: unknown '$item'; choose from: $*"
  done
}

SIZES=0.5b,1.5b METHODS=lora,full ROUNDS=2 ROWS=600 CUTOFF=1024 BATCH=8 EPOCHS=3
OUT=bench/gpu-results.jsonl PY="" VENV="" PEAK="" DRY=0
HOME_DIR=${TUNELAB_BENCH_HOME:-$HOME/.cache/tunelab-bench}

while [[ $# -gt 0 ]]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --dry-run) DRY=1; shift; continue ;;
    --sizes|--methods|--rounds|--rows|--cutoff|--batch|--epochs|--out|--python|--venv|--peak-tflops)
      [[ $# -ge 2 ]] || die "$1 needs a value" ;;
    *) usage >&2; die "unknown option '$1'" ;;
  esac
  case $1 in
    --sizes) SIZES=$2 ;; --methods) METHODS=$2 ;; --rounds) ROUNDS=$2 ;; --rows) ROWS=$2 ;;
    --cutoff) CUTOFF=$2 ;; --batch) BATCH=$2 ;; --epochs) EPOCHS=$2 ;; --out) OUT=$2 ;;
    --python) PY=$2 ;; --venv) VENV=$2 ;; --peak-tflops) PEAK=$2 ;;
  esac
  shift 2
done

check_list --sizes "$SIZES" 0.5b 1.5b
check_list --methods "$METHODS" lora full
for pair in "--rounds $ROUNDS" "--rows $ROWS" "--cutoff $CUTOFF" "--batch $BATCH" "--epochs $EPOCHS"; do
  positive_int $pair
done
(( ROWS <= 600 )) || die "--rows: the two alpaca demos hold 600 rows, got $ROWS"
[[ -z "$PEAK" || "$PEAK" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--peak-tflops needs a number, got '$PEAK'"
[[ -f bench/bench_train.py ]] || die "run it from the repository root (bench/bench_train.py not found)"
if [[ -z "$PY" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
VENV=${VENV:-$HOME_DIR/llamafactory-0.9.5}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

has() {  # has PYTHON MODULE: whether MODULE imports there
  [[ -x "$1" ]] && "$1" -c "import $2" >/dev/null 2>&1
}

tunelab_declares() {  # whether TuneLab's recipe declares KEY as its own option
  "$PY" - "$1" <<'EOF' >/dev/null 2>&1
import sys
from tunelab.config.schema import Config
sys.exit(0 if any(hasattr(s, sys.argv[1]) for s in Config().sections.values()) else 1)
EOF
}

arms() {  # the configurations to race; kernel arms only where their package is installed
  local list=tunelab,hf_peft_baseline,llamafactory
  if (( DRY )); then
    echo "$list,tunelab_liger,llamafactory_liger,tunelab_fa2,llamafactory_fa2 (kernel arms only if installed)"
    return
  fi
  if has "$PY" liger_kernel && tunelab_declares enable_liger_kernel; then list+=,tunelab_liger; fi
  if has "$VENV/bin/python" liger_kernel; then list+=,llamafactory_liger; fi
  if has "$PY" flash_attn; then list+=,tunelab_fa2; fi
  if has "$VENV/bin/python" flash_attn; then list+=,llamafactory_fa2; fi
  echo "$list"
}

run() {  # print, then run unless --dry-run
  echo "+ $*" >&2
  (( DRY )) || "$@"
}

if (( ! DRY )); then
  command -v nvidia-smi >/dev/null || { echo "bench/gpu.sh: no NVIDIA GPU here (nvidia-smi not found)" >&2; exit 1; }
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || { echo "bench/gpu.sh: torch in $PY sees no CUDA device" >&2; exit 1; }
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2
fi

ARMS=$(arms)
echo "arms: $ARMS" >&2
ARMS=${ARMS%% *}
IFS=, read -ra size_list <<< "$SIZES"
IFS=, read -ra method_list <<< "$METHODS"
for size in "${size_list[@]}"; do
  model="$HOME_DIR/models/qwen2.5-$size-random"
  run "$PY" bench/gpu_models.py "$size" "$model"
  for method in "${method_list[@]}"; do
    cmd=("$PY" bench/bench_train.py --configs "$ARMS" --rounds "$ROUNDS" --model "$model"
         --finetuning "$method" --bf16 --rows "$ROWS" --cutoff "$CUTOFF" --batch "$BATCH"
         --epochs "$EPOCHS" --venv "$VENV")
    [[ -n "$PEAK" ]] && cmd+=(--peak-tflops "$PEAK")
    echo "+ ${cmd[*]} | tee -a $OUT" >&2
    (( DRY )) || "${cmd[@]}" | tee -a "$OUT"
  done
done
run "$PY" bench/bench_table.py "$OUT"
