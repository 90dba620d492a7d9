# Sourced on the device machine by bench/gpu_seg.sh and bench/gpu_check.sh: the carried wheels
# (bench/device_prep.sh) into /tmp/site, and lgenet from src/, on PYTHONPATH. NO_WHL=1 skips it (a dry run here).
export PYTHONUNBUFFERED=1
if [ -d .whl ] && [ -z "${NO_WHL:-}" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 3
    export PYTHONPATH=/tmp/site:$PWD/src
fi
