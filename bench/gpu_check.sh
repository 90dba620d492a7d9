#!/usr/bin/env bash
# The grid-at-scale issue's GPU figure (issue 12), in one prepared call on a lent device machine.
#
# The device machine reaches nothing outside and lacks some packages: run bench/device_prep.sh here first
# (wheels in .whl, EMIDEC in runs/emidec_data), then, with carry [".whl", "runs/emidec_data"] and timeout_s 600:
#   bash bench/gpu_check.sh
# issue 12: the seed protocol's grid at the full budget (100 epochs, 224 / 299 px, batch 8) on EMIDEC,
# both tasks x ResNet50 + InceptionV3 x random init x 4 folds = 16 fits, 4 fits at a time sharing the GPU
# (--executor process --workers 4). The full grid (3 inits) is 3x these fits: the script prints the
# wall time and that extrapolation (target < 5 min; ~38 min measured one fit at a time).
# (The segmentation issue's GPU figures are bench/gpu_seg.sh's; they are on record, docs/results.md configuration 15.)
# Results go to $OUT (the files the session reads back).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/out}
mkdir -p "$OUT"
source bench/device_env.sh
DATA=${EMIDEC:-runs/emidec_data}
{ nvidia-smi --query-gpu=name,memory.total --format=csv; nproc; date -u; } | tee "$OUT/machine.txt"

mkdir -p runs/bench/gpu_grid
[ -f runs/bench/gpu_grid/emidec.csv ] || python3 -m lgenet import emidec "$DATA" --out runs/bench/gpu_grid/emidec.csv
t0=$(date +%s)
timeout 300 python3 -m lgenet run --manifest runs/bench/gpu_grid/emidec.csv --tasks lge,event --archs resnet50,inception_v3 \
    --inits random --epochs 100 --device cuda --executor process --workers 4 --keep-models none --no-report -q \
    --out runs/bench/gpu_grid/run 2>&1 | tail -20 | tee "$OUT/grid.log"
rc=${PIPESTATUS[0]}  # lgenet's (or timeout's 124) status, read before any other command resets it
t1=$(date +%s)
echo "grid: 16 fits in $((t1 - t0)) s (exit $rc); the 48-fit grid ~ $((3 * (t1 - t0))) s" | tee -a "$OUT/grid.log"
cp runs/bench/gpu_grid/run/metrics.csv "$OUT/grid_metrics.csv" 2>/dev/null || true
