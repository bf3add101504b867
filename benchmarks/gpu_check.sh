#!/usr/bin/env bash
# The device checks of one lent GPU session, as one prepared pass (a few minutes on an H200):
#   the default test suite with device "auto" resolving to CUDA, training speed (1 and 2 layers, 1 and 8 batched
#   runs), the cost of choosing start and depth (benchmarks/selection_cost.py) and, with "scale" as the second
#   argument, seconds per epoch on the platform-sized sets (benchmarks/scale.py); with "profile", where a training
#   step's time goes on the machine's CPU and its GPU (benchmarks/step_profile.py), then the tests and the
#   selection_cost sets named in PYTEST_ARGS and SELECTION_SETS; with "together", choosing the depth with every
#   depth's candidates in one batched model against one depth after another (benchmarks/depths_together.py), then
#   the cost of choosing (selection_cost.py, which now trains the depths together on the GPU).
# Every step has its own time limit and writes one file into OUT (default /tmp/gpu_check); steps.txt lists each
# step's exit status and seconds. Missing Python packages travel as wheels in .whl/ (see the device README).
#
# Usage: bash benchmarks/gpu_check.sh OUT [scale|profile|together]        PY=python3 DEVICE=cuda (defaults)
set -u
OUT=${1:-/tmp/gpu_check}
PART=${2:-main}
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.." || exit 1
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        > "$OUT/env.txt" 2>&1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
    "$PY" - <<'EOF'
import platform, importlib.metadata as m, os, torch
print("python", platform.python_version(), "cores", os.cpu_count(), "torch", torch.__version__,
      "cuda", torch.cuda.is_available() and torch.cuda.get_device_name(0))
for name in ("numpy", "pandas", "scipy", "scikit-learn", "crowd-kit", "streamlit", "entmax", "plotly"):
    try:
        print(name, m.version(name))
    except m.PackageNotFoundError:
        print(name, "missing")
EOF
} >> "$OUT/env.txt" 2>&1

step() {  # step NAME SECONDS COMMAND...: run COMMAND under a time limit, output to OUT/NAME.txt
    local name=$1 limit=$2 started
    shift 2
    started=$(date +%s)
    timeout -k 5 "$limit" "$@" >> "$OUT/$name.txt" 2>&1
    echo "$name: exit $? after $(( $(date +%s) - started )) s" | tee -a "$OUT/steps.txt"
}

if [ "$PART" = "scale" ]; then
    step scale "${SCALE_S:-200}" "$PY" benchmarks/scale.py --device "$DEVICE" --sets medium mnist_e netease \
        --steps deem_epoch --data-dir /tmp/deem-scale
    exit 0
fi
if [ "$PART" = "together" ]; then  # the depths of n_layers="auto" as one batched model vs one after another
    step depths_together "${TOGETHER_S:-240}" "$PY" benchmarks/depths_together.py --device "$DEVICE" \
        --out "$OUT/depths_together_table.txt" --sets ${TOGETHER_SETS:-groups:0 copies:0 experts:0 sparse:0 condind tree3k}
    step selection_cost "${SELECTION_S:-170}" "$PY" benchmarks/selection_cost.py --device "$DEVICE" \
        --out "$OUT/selection_cost_table.txt" --sets ${SELECTION_SETS:-groups:0 copies:0 independent:0 sparse:0 \
        experts:0 spammers:0 imbalance:0 apph:0 condind tree3k}
    exit 0
fi
if [ "$PART" = "profile" ]; then
    step step_profile "${PROFILE_S:-100}" "$PY" benchmarks/step_profile.py --devices cpu "$DEVICE" --epochs 2
    step depth_concurrency "${CONCURRENCY_S:-40}" "$PY" benchmarks/depth_concurrency.py --device "$DEVICE"
    [ -n "${PYTEST_ARGS:-}" ] && step pytest "${PYTEST_S:-60}" "$PY" -m pytest -q -p no:cacheprovider -rfE $PYTEST_ARGS
    [ -n "${SELECTION_SETS:-}" ] && step selection_cost "${SELECTION_S:-80}" "$PY" benchmarks/selection_cost.py \
        --device "$DEVICE" --out "$OUT/selection_cost_table.txt" --sets $SELECTION_SETS
    exit 0
fi
step speed "${SPEED_S:-40}" "$PY" benchmarks/speed.py --device "$DEVICE" --runs 1 8 --epochs 5
step speed "${SPEED_S:-40}" "$PY" benchmarks/speed.py --device "$DEVICE" --runs 1 8 --epochs 5 --layers 2
step selection_cost "${SELECTION_S:-170}" "$PY" benchmarks/selection_cost.py --device "$DEVICE" \
    --out "$OUT/selection_cost_table.txt" --sets ${SELECTION_SETS:-groups:0 copies:0 independent:0 sparse:0 \
    experts:0 spammers:0 imbalance:0 apph:0 condind ampdata mnist_like:0}
step pytest "${PYTEST_S:-130}" "$PY" -m pytest -q -p no:cacheprovider -rfE ${PYTEST_ARGS:--n 8}
