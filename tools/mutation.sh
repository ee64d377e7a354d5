#!/usr/bin/env bash
# Mutation testing: mutmut changes one thing at a time in the code (a + for a -, a < for a
# <=, a constant, a dropped call...) and runs the tests that reach it; a change that no test
# notices "survives", and shows a gap in the tests. Configured in pyproject.toml
# ([tool.mutmut]); the score and every survivor are in tests/README.md.
#
#   pip install -r requirements-dev.txt
#   bash tools/mutation.sh                 # all of it: common/data.py, common/checkpoint.py,
#                                          # disk.atomic_write and the training, test and
#                                          # prediction functions of p23-25
#   bash tools/mutation.sh p24_train_gpu   # one group (data, checkpoint, disk, p23_train,
#                                          # p24_train_gpu, p25_test), or several
#   bash tools/mutation.sh "common.cli.*"  # any other mutants, by mutmut's names
#   FRESH=1 bash tools/mutation.sh         # forget earlier results (mutants/) first
#   QUICK=1 bash tools/mutation.sh data    # each group against its own test files only
#   QUICK=1 bash tools/mutation.sh "common.data.x_cifar10__mutmut_*"   # names, the same way
#
# QUICK=1 runs in .mutation-quick/ (git-ignored), a copy of the tree whose configuration
# selects only the group's own test files (data: test_common_data.py and
# test_common_download.py; see QUICK_TESTS in tools/mutation_score.py): a lower bound on the
# score, since a mutant those miss may be caught by another file, and far faster where the
# code is reached by many slow tests (common/data.py, by every training test). A mutant that
# survives it can be run again in the full selection by name.
#
# Results are kept in mutants/ (git-ignored): a rerun without names re-tests only what changed.
# On the 2-core machine a run starts with about 6 minutes of set-up (the mutants, then every
# selected test once, to learn which tests reach which function), then tests 1 to 8 mutants a
# minute: p24 or p25 in 10 to 15 minutes, checkpoint in about an hour, p23 in about two,
# data several hours (a mutant that survives runs every test that reaches it: those cost most);
# with QUICK=1, data took 20 minutes (1 to 2 of them set-up), and about 50 with more tests;
# with one torch thread a test process (below), p23 took 20.6 minutes and checkpoint with
# data's cifar10 17.6. Edit this file only between runs: bash reads it as it goes.
# tests/README.md has the measured runs.
set -eo pipefail
cd "$(dirname "$0")/.."
if ! python -c "import mutmut" 2>/dev/null; then
    echo "error: mutmut is not installed in this Python: pip install -r requirements-dev.txt" >&2
    exit 1
fi
if [ -n "${QUICK:-}" ]; then             # a copy of the tree, selecting the groups' own tests
    [ $# -gt 0 ] || { echo "error: QUICK=1 needs the groups (or mutant names) to run" >&2; exit 1; }
    config=$(python tools/mutation_score.py --quick-config "$@") || exit 1   # groups checked first
    mkdir -p .mutation-quick
    # the tree as it is (files deleted here are left out), times kept so mutmut sees no change
    git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
        xargs -0 cp -p --parents -t .mutation-quick
    printf '%s\n' "$config" > .mutation-quick/pyproject.toml
    cd .mutation-quick
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
# One thread a test process: mutmut's time limit counts CPU seconds, and two processes of two
# torch threads each on two cores spin-wait for each other (OpenMP), so their CPU time grows
# several-fold and a mutant a test kills at once could be counted a timeout instead.
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} mutmut run --max-children "${JOBS:-2}" "$@"
python tools/mutation_score.py
