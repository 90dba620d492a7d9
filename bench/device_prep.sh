#!/usr/bin/env bash
# Here, before a device call (bench/gpu_seg.sh, bench/gpu_check.sh): the wheels of the packages that the
# device image lacks, for its Python 3.12, in .whl; EMIDEC as int16 NIfTI in runs/emidec_data. Both are
# git-ignored (.whl through .git/info/exclude) and travel with carry [".whl", "runs/emidec_data"].
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
v() { python3 -c "import importlib.metadata as m; print(m.version('$1'))"; }
for p in monai nibabel pydicom ttach lifelines autograd; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform any -d .whl "$p==$(v "$p")"
done
python3 -m pip wheel -q --no-deps -w .whl "grad-cam==$(v grad-cam)" "autograd-gamma==$(v autograd-gamma)"
[ -d runs/emidec_data ] || python3 bench/emidec_int16.py "${EMIDEC:-../shared/data/emidec}" runs/emidec_data
du -sh .whl runs/emidec_data
