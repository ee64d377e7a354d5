#!/usr/bin/env bash
# Mutation testing: mutmut changes one thing at a time in the code (a + for a -, a < for a
# <=, a constant, a dropped call...) and runs the tests that reach it; a change that no test
# notices "survives", and shows a gap in the tests. Configured in pyproject.toml
# ([tool.mutmut]); the score and every survivor are in tests/README.md.
#
#   pip install -r requirements-dev.txt
#   bash tools/mutation.sh                 # common/data.py, common/checkpoint.py and the
#                                          # training, test and prediction functions of p23-25
#   bash tools/mutation.sh "common.cli.*"  # any other mutants, by mutmut's names
#   FRESH=1 bash tools/mutation.sh         # forget earlier results (mutants/) first
#
# Results are kept in mutants/ (git-ignored): a rerun re-tests only what changed. On the
# 2-core machine the whole default run took about 60 minutes from fresh (tests/README.md).
set -eo pipefail
cd "$(dirname "$0")/.."
if ! python -c "import mutmut" 2>/dev/null; then
    echo "error: mutmut is not installed in this Python: pip install -r requirements-dev.txt" >&2
    exit 1
fi
[ -n "${FRESH:-}" ] && rm -rf mutants
if [ $# -eq 0 ]; then
    mapfile -t names < <(python tools/mutation_score.py --patterns)
    set -- "${names[@]}"
fi
mutmut run --max-children "${JOBS:-2}" "$@"
python tools/mutation_score.py
