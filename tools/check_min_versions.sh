#!/usr/bin/env bash
# Build a virtual environment with exactly the lowest versions requirements.txt allows (each
# "name>=X" installed as "name==X") and run the test suite against them, so the floors are
# versions that were installed together and tested, not claims. Run by hand, not in CI: it
# downloads gigabytes (PyTorch's wheels). Record the result in the README ("Tested versions").
#
#   bash tools/check_min_versions.sh              # the whole suite
#   PYTHON=python3.10 bash tools/check_min_versions.sh -x -q tests/test_p23_train.py
#   REUSE=1 bash tools/check_min_versions.sh -q      # the venv it built last time, no install
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv-min}
mapfile -t pins < <(sed -n 's/^\([A-Za-z0-9_.-]*\)>=\([0-9][^ ;#]*\).*/\1==\2/p' requirements.txt)
python=${PYTHON:-python3}
if ! command -v "$python" > /dev/null; then
    echo "error: no Python named $python here (PYTHON=...)" >&2
    exit 1
fi
if [ -z "${REUSE:-}" ] || [ ! -x "$venv/bin/python" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    . "$venv/bin/activate"
    echo "installing the floors: ${pins[*]}"
    pip install "${pins[@]}"
    pip install --no-deps -e .
else
    . "$venv/bin/activate"
fi
python --version
pip list --format=freeze | grep -i -E "^($(printf '%s|' "${pins[@]%%==*}")pip)=" || true
python -m pytest "$@"
