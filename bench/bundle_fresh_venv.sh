#!/usr/bin/env bash
# A bundle applied by "a colleague": a fresh virtual environment (lgenet installed from this repository's files,
# not editable) in a fresh directory with an empty cache, against the run's own `segment apply` here.
#
#   bash bench/bundle_fresh_venv.sh RUN BUNDLE MANIFEST [WORK]
#
# RUN: the segmentation run the bundle was exported from; BUNDLE: its .lgenet; MANIFEST: the cohort to apply
# (patient_id, image). Prints, per engine of the fresh install, how many masks are identical to the run's own.
set -euo pipefail
RUN=$(realpath "$1"); BUNDLE=$(realpath "$2"); MANIFEST=$(realpath "$3"); WORK=${4:-/tmp/bundle_fresh_venv}
REPO=$(cd "$(dirname "$0")/.." && pwd)
rm -rf "$WORK"; mkdir -p "$WORK/colleague"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1 /proc/loadavg), $(nproc) cores"
t0=$(date +%s)
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q torch==2.14.1 torchvision==0.29.1
"$WORK/venv/bin/pip" install -q "$REPO"
echo "fresh venv with lgenet $("$WORK/venv/bin/python" -c 'import lgenet; print(lgenet.__version__, lgenet.__file__)'): $(( $(date +%s) - t0 )) s"
# the run's own apply, with the development install
python3 -m lgenet segment apply --run "$RUN" --manifest "$MANIFEST" --out "$WORK/own" --no-overlays -q --threads 2
cd "$WORK/colleague"
for engine in torch onnx; do
  LGENET_CACHE="$WORK/colleague/cache" "$WORK/venv/bin/lgenet" segment apply --model "$BUNDLE" --manifest "$MANIFEST" \
    --out "$WORK/colleague/$engine" --engine "$engine" --no-overlays -q --threads 2
done
"$WORK/venv/bin/python" - "$WORK" <<'EOF'
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

work = Path(sys.argv[1])
own = sorted((work / "own" / "masks").glob("*.nii.gz"))
for engine in ("torch", "onnx"):
    same = sum(
        np.array_equal(np.asarray(nib.load(f).dataobj), np.asarray(nib.load(work / "colleague" / engine / "masks" / f.name).dataobj))
        for f in own
    )
    print(f"fresh venv, --engine {engine}: {same} of {len(own)} masks identical to the run's own apply")
EOF
