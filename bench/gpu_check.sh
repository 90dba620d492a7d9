#!/usr/bin/env bash
# Every GPU figure the open issues ask for, in one prepared call on the lent device machine.
#
# The device machine reaches nothing outside: carry the EMIDEC data in a git-ignored folder first,
#   mkdir -p runs/emidec_data && cp -r ../shared/data/emidec/Case_* ../shared/data/emidec/*.csv runs/emidec_data/
# (~64 MB) and pass carry=["runs/emidec_data"], then (timeout_s 600):
#   bash bench/gpu_check.sh
# Each part has its own time limit, so that a slow part still leaves the others' figures; a session's
# device budget is ~15 min in all (start-up included), so the parts come in order of importance:
#
# 1. issue 12: the seed protocol's grid at the full budget (100 epochs, 224 / 299 px, batch 8) on EMIDEC,
#    both tasks x ResNet50 + InceptionV3 x random init x 4 folds = 16 fits, 4 fits at a time sharing the GPU
#    (--executor process --workers 4). The full grid (3 inits) is 3x these fits: the script prints the
#    wall time and that extrapolation (target < 5 min; ~38 min measured one fit at a time).
# 2. issue 11: the segmentation CV at the CPU defaults (120 epochs, 2 folds at a time on the GPU), to set
#    beside the CPU figures in docs/results.md (configuration 5: 24.4 min on 2 cores).
# Results go to $OUT (the files the session reads back).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/out}
mkdir -p "$OUT"
python -m pip install -q -e . >/dev/null 2>&1 || python -m pip install -q -e . --no-build-isolation
DATA=${EMIDEC:-runs/emidec_data}
{ nvidia-smi --query-gpu=name,memory.total --format=csv; nproc; date -u; } | tee "$OUT/machine.txt"

mkdir -p runs/bench/gpu_grid
[ -f runs/bench/gpu_grid/emidec.csv ] || lgenet import emidec "$DATA" --out runs/bench/gpu_grid/emidec.csv
t0=$(date +%s)
timeout 300 lgenet run --manifest runs/bench/gpu_grid/emidec.csv --tasks lge,event --archs resnet50,inception_v3 \
    --inits random --epochs 100 --device cuda --executor process --workers 4 --keep-models none --no-report -q \
    --out runs/bench/gpu_grid/run 2>&1 | tail -20 | tee "$OUT/grid.log"
rc=${PIPESTATUS[0]}  # lgenet's (or timeout's 124) status, read before any other command resets it
t1=$(date +%s)
echo "grid: 16 fits in $((t1 - t0)) s (exit $rc); the 48-fit grid ~ $((3 * (t1 - t0))) s" | tee -a "$OUT/grid.log"
cp runs/bench/gpu_grid/run/metrics.csv "$OUT/grid_metrics.csv" 2>/dev/null || true

timeout 420 python bench/segmentation.py --emidec "$DATA" --device cuda --executor process --workers 2 \
    --out runs/bench/seg_gpu_e120 --no-shift 2>&1 | tail -30 | tee "$OUT/seg_gpu_e120.log"
cp runs/bench/seg_gpu_e120/results.md "$OUT/seg_gpu_e120.md" 2>/dev/null || true
cp runs/bench/seg_gpu_e120/results.json "$OUT/seg_gpu_e120.json" 2>/dev/null || true
