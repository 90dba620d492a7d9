#!/usr/bin/env bash
# The GPU figures of the segmentation issue in one prepared call (run on the lent device machine).
#
# The device machine reaches nothing outside: carry the EMIDEC data in a git-ignored folder first,
#   mkdir -p runs/emidec_data && cp -r ../shared/data/emidec/Case_* ../shared/data/emidec/*.csv runs/emidec_data/
# (~64 MB) and pass carry=["runs/emidec_data"], then:
#   bash bench/gpu_check.sh            # ~10 min on one H100 (estimate; not yet run)
#
# 1. the segmentation CV at the CPU defaults (120 epochs), to compare with docs/results.md (CPU: 35.5 min);
# 2. the same at a GPU budget (400 epochs, 2 folds at a time sharing the GPU).
# Both write results.md / results.json under runs/bench/; copy them to $OUT for the session to read.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -e . >/dev/null
DATA=${EMIDEC:-runs/emidec_data}
nvidia-smi --query-gpu=name,memory.total --format=csv
python bench/segmentation.py --emidec "$DATA" --device cuda --out runs/bench/seg_gpu_e120 --no-shift
python bench/segmentation.py --emidec "$DATA" --device cuda --epochs 400 --executor process --workers 2 \
    --out runs/bench/seg_gpu_e400
mkdir -p "${OUT:-runs/out}"
for d in seg_gpu_e120 seg_gpu_e400; do
    cp runs/bench/$d/results.md "${OUT:-runs/out}/$d.md"
    cp runs/bench/$d/results.json "${OUT:-runs/out}/$d.json"
done
