#!/usr/bin/env bash
# Mutation testing: mutmut changes one thing at a time in the code (a + for a -, a < for a
# <=, a constant, a dropped call...) and runs the tests that reach it; a change that no test
# notices "survives", and shows a gap in the tests. Configured in pyproject.toml
# ([tool.mutmut]); the score and every survivor are in tests/README.md.
#
#   pip install -r requirements-dev.txt
#   bash tools/mutation.sh                 # all of it: common/data.py, common/checkpoint.py and
#                                          # the training, test and prediction functions of p23-25
#   bash tools/mutation.sh p24_train_gpu   # one group (data, checkpoint, p23_train,
#                                          # p24_train_gpu, p25_test), or several
#   bash tools/mutation.sh "common.cli.*"  # any other mutants, by mutmut's names
#   FRESH=1 bash tools/mutation.sh         # forget earlier results (mutants/) first
#
# Results are kept in mutants/ (git-ignored): a rerun without names re-tests only what changed.
# On the 2-core machine a run starts with about 6 minutes of set-up (the mutants, then every
# selected test once, to learn which tests reach which function), then tests 1 to 8 mutants a
# minute: p24 or p25 in 10 to 15 minutes, checkpoint in about an hour, p23 in about two,
# data several hours (a mutant that survives runs every test that reaches it: those cost most).
# tests/README.md has the measured runs.
set -eo pipefail
cd "$(dirname "$0")/.."
if ! python -c "import mutmut" 2>/dev/null; then
    echo "error: mutmut is not installed in this Python: pip install -r requirements-dev.txt" >&2
    exit 1
fi
[ -n "${FRESH:-}" ] && rm -rf mutants
names=()
for arg in "$@"; do           # a group's name stands for its patterns
    case $arg in
        *.*) names+=("$arg") ;;
        *) group=$(python tools/mutation_score.py --patterns "$arg") || exit 1
           mapfile -t -O "${#names[@]}" names <<< "$group" ;;
    esac
done
[ $# -eq 0 ] && mapfile -t names < <(python tools/mutation_score.py --patterns)
set -- "${names[@]}"
mutmut run --max-children "${JOBS:-2}" "$@"
python tools/mutation_score.py
