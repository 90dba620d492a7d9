#!/usr/bin/env bash
# The segmentation issue's GPU figures, in one prepared call on a lent device machine (one H100 or H200,
# 16 CPU cores). Every setting and the rule that picks part B's epochs are fixed here, before the call.
#
# The device machine reaches nothing outside and lacks some packages. Here, first: bash bench/device_prep.sh
# (the wheels in .whl; EMIDEC as int16 NIfTI in runs/emidec_data: its float64 images hold integers 0-4095, so
# the same values fit in 47 MB instead of 65 MB, within the device call's 64 MiB)
# then run `bash bench/gpu_seg.sh` with carry [".whl", "runs/emidec_data"] and timeout_s 590.
#
# A. The CPU default (configuration 10: 120 epochs, seed 0) on the GPU: the 4 folds at once
#    (--executor process --workers 4), each with 3 DataLoader workers making its augmented batches
#    (--loader-workers 3; 4 x (1 + 3) processes on the 16 cores). Its time is the GPU figure of the
#    default CV; its Dice sets the GPU beside the CPU's (0.842 / 0.556).
# B. The same design trained longer, as long as the time left allows: from A's own measured seconds per
#    segmenter epoch (the slowest fold) and its overhead, the largest E in 600, 500, 400, 300, 240, 200
#    with overhead + 1.1 x E x seconds-per-epoch <= the time left - 20 s. Nothing in this choice looks at a
#    Dice. If no E fits, B is skipped.
# Results under $OUT: machine.txt, choice.txt, the two logs, runs.tgz (each run without its model files
# and masks: seg_metrics.csv, seg_summary.json, fit.json per fold, results.md/json, the report).
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
DEADLINE=$((T0 + ${BUDGET_S:-560}))
OUT=${OUT:-runs/out}
mkdir -p "$OUT"
source bench/device_env.sh
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; echo "cores: $(nproc)"; date -u;
  python3 -c "import torch, monai; print('torch', torch.__version__, 'monai', monai.__version__)"; } | tee "$OUT/machine.txt"
DATA=${EMIDEC:-runs/emidec_data}
# DEVICE / WORKERS / LOADER / EXTRA: only for a dry run of this script on a CPU (e.g. EXTRA=--quick)
COMMON="--emidec $DATA --device ${DEVICE:-cuda} --executor process --workers ${WORKERS:-4} --threads 1 --loader-workers ${LOADER:-3} --no-shift ${EXTRA:-}"
pack() {
    tar czf "$OUT/runs.tgz" --exclude='*.pt' --exclude='masks' runs/gpu 2>/dev/null || true
}

tA=$(date +%s)
timeout $((DEADLINE - tA)) python3 bench/segmentation.py $COMMON --out runs/gpu/seg_e120 > "$OUT/seg_e120.log" 2>&1
rcA=$?
tA1=$(date +%s)
echo "A: exit $rcA, $((tA1 - tA)) s" | tee "$OUT/choice.txt"
pack
[ $rcA -eq 0 ] || exit $rcA

EB=$(python3 - "$tA" "$tA1" "$DEADLINE" 2>>"$OUT/choice.txt" <<'EOF'
import glob, json, sys
ta, ta1, deadline = (int(v) for v in sys.argv[1:4])
fits = [json.load(open(f)) for f in glob.glob("runs/gpu/seg_e120/run/fits/seg/fold*/fit.json")]
per_epoch = max(f["seconds_segmenter"] / f["epochs"] for f in fits)
overhead = (ta1 - ta) - max(f["seconds_segmenter"] for f in fits)
left = deadline - ta1
fit = [e for e in (600, 500, 400, 300, 240, 200) if overhead + 1.1 * e * per_epoch <= left - 20]
print(fit[0] if fit else 0)
print(f"segmenter s/epoch {per_epoch:.3f} (slowest fold), overhead {overhead} s, left {left} s -> E = "
      f"{fit[0] if fit else 'none'}", file=sys.stderr)
EOF
)
echo "B: E = $EB (time left $((DEADLINE - $(date +%s))) s)" | tee -a "$OUT/choice.txt"
if [ "${EB:-0}" -gt 0 ]; then
    tB=$(date +%s)
    timeout $((DEADLINE - tB)) python3 bench/segmentation.py $COMMON --epochs "$EB" --out "runs/gpu/seg_e$EB" \
        > "$OUT/seg_e$EB.log" 2>&1
    echo "B: exit $?, $(($(date +%s) - tB)) s" | tee -a "$OUT/choice.txt"
fi
pack
