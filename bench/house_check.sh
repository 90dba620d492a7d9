#!/usr/bin/env bash
# Behaviour check of a restructuring: a fixed small segmentation CV, grid and outcomes run on a synthetic
# cohort, whose oof_predictions.csv, metrics.csv, seg_metrics.csv and outcomes tables are hashed. Run it on
# the commit before and the commit after (each with its own source tree on PYTHONPATH) and compare:
#   PYTHONPATH=/path/to/old/src bash bench/house_check.sh /tmp/before
#   PYTHONPATH=/path/to/new/src bash bench/house_check.sh /tmp/after
#   diff /tmp/before/SHA256SUMS /tmp/after/SHA256SUMS
# CPU only, one thread per fit, fp32: about 3 minutes on 2 cores.
set -euo pipefail
out=${1:?usage: house_check.sh OUT_DIR}
rm -rf "$out" && mkdir -p "$out"
export OMP_NUM_THREADS=1 MPLBACKEND=Agg
py=${PYTHON:-python3}
lg() { "$py" -m lgenet "$@"; }
lg synth --out "$out/cohort" --n-patients 16 --image-size 48 --seed 0 -q
cat > "$out/seg.yaml" <<YAML
labels: {cavity: [1], myo: [2, 3], lge: [3], other: [0, 4]}
spacing: 2.5
crop: 64
channels: [8, 16, 32, 64]
res_units: 1
loc_spacing: 7.0
loc_size: 32
loc_channels: [4, 8, 16]
epochs: 3
loc_epochs: 2
batch_size: 4
lr: 0.003
folds: 2
num_threads: 1
coarse_shift_mm: 0.0
precision: fp32
device: cpu
YAML
lg segment train --config "$out/seg.yaml" --manifest "$out/cohort/manifest.csv" --out "$out/seg" -q
cat > "$out/run.yaml" <<YAML
archs: [tiny]
inits: [random]
families: [classifier, burden]
epochs: 2
image_size: 48
folds: 2
num_threads: 1
precision: fp32
device: cpu
n_bootstrap: 200
YAML
lg run --config "$out/run.yaml" --manifest "$out/cohort/manifest.csv" --out "$out/run" \
    --segmentation-run "$out/seg" --no-report -q
cd "$out"
files=(seg/seg_metrics.csv run/oof_predictions.csv run/metrics.csv)
for f in run/outcomes/oof_outcomes.csv run/outcomes/measures.csv; do [[ -f $f ]] && files+=("$f"); done
sha256sum "${files[@]}" | tee SHA256SUMS
