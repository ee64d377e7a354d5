"""The mutation score of the last tools/mutation.sh run, from mutmut's own records
(mutants/<file>.meta): detected (killed or timed out) / total, for each file and function
group of tools/mutation.sh, then every surviving mutant by name (``mutmut show NAME`` shows
its change).

    python tools/mutation_score.py             # the table, then the survivors
    python tools/mutation_score.py --markdown  # the table as tests/README.md has it
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What tools/mutation.sh mutates, by group: (label, file, mutant name patterns); the group's
# short name is its file's stem (data, checkpoint, disk, p23_train, p24_train_gpu, p25_test)
GROUPS = [
    ("common/data.py", "common/data.py", ["common.data.*"]),
    ("common/checkpoint.py", "common/checkpoint.py", ["common.checkpoint.*"]),
    ("common/disk.py: atomic_write", "common/disk.py",
     ["common.disk.x_atomic_write__mutmut_*", "common.disk.x__umask__mutmut_*",
      "common.disk.xǁ_Rememberingǁ*"]),
    ("p23: train_step, make_train_step, train, test, per_class_accuracy",
     "scripts/p23_train.py",
     [f"scripts.p23_train.x_{f}__mutmut_*" for f in
      ("train_step", "make_train_step", "train", "test", "per_class_accuracy")]),
    ("p24: to_gpu, train, test", "scripts/p24_train_gpu.py",
     [f"scripts.p24_train_gpu.x_{f}__mutmut_*" for f in ("to_gpu", "train", "test")]),
    ("p25: load_model, read_image, predict", "scripts/p25_test.py",
     [f"scripts.p25_test.x_{f}__mutmut_*" for f in ("load_model", "read_image", "predict")]),
]
# Each group's own test files, which QUICK=1 bash tools/mutation.sh selects alone
QUICK_TESTS = {
    "data": ["tests/test_common_data.py", "tests/test_common_download.py"],
    "checkpoint": ["tests/test_common_checkpoint.py", "tests/test_p22_model_save_load.py",
                   "tests/test_disk_writes.py"],
    "disk": ["tests/test_common_checkpoint.py", "tests/test_disk_writes.py",
             "tests/test_p06_dataset.py"],
    "p23_train": ["tests/test_p23_train.py"],
    "p24_train_gpu": ["tests/test_p24_train_gpu.py"],
    "p25_test": ["tests/test_p25_test.py"],
}
DETECTED = {1, 3, 36, 24, -24, 152, 255}      # killed (a test failed) or timed out
SURVIVED = {0}
NOT_RUN = {None, 5, 33, 34}                   # not checked yet, no test, skipped


def patterns(groups: list[str] | None = None) -> list[str]:
    """The patterns of the groups named by their file's stem (all without names): what
    tools/mutation.sh passes to ``mutmut run``."""
    stems = [Path(path).stem for _, path, _ in GROUPS]
    unknown = set(groups or ()) - set(stems)
    if unknown:
        raise SystemExit(f"error: no group {', '.join(sorted(unknown))}; the groups: "
                         f"{', '.join(stems)}")
    return [p for (_, path, pats) in GROUPS if not groups or Path(path).stem in groups
            for p in pats]


def group_of(arg: str) -> str:
    """The group of ``arg``: a group's name, or a mutant name (pattern) in a group's file."""
    if "." not in arg:
        return arg
    for _, path, _ in GROUPS:
        if arg.startswith(path[:-len(".py")].replace("/", ".") + "."):
            return Path(path).stem
    raise SystemExit(f"error: {arg} is not in a group's file; QUICK=1 runs those only")


def quick_config(args: list[str]) -> str:
    """pyproject.toml with mutmut's test selection narrowed to the own test files of the
    groups ``args`` name, or hold the mutants they name."""
    groups = list(dict.fromkeys(group_of(a) for a in args))
    patterns(groups)                                   # an unknown group: one error line
    text = (ROOT / "pyproject.toml").read_text()
    start = text.index("pytest_add_cli_args_test_selection = [")
    end = text.index("]", start) + 1
    files = [f for g in groups for f in QUICK_TESTS[g]]
    return text[:start] + f"pytest_add_cli_args_test_selection = {json.dumps(files)}" + text[end:]


def results(root: Path = ROOT) -> dict[str, int | None]:
    """``{mutant name: mutmut's exit code}`` of every mutant mutmut has recorded."""
    codes = {}
    for meta in (root / "mutants").rglob("*.py.meta"):
        codes.update(json.loads(meta.read_text())["exit_code_by_key"])
    return codes


def score(codes: dict[str, int | None]) -> list[dict]:
    rows = []
    for label, path, pats in GROUPS:
        names = sorted(n for n in codes if any(fnmatch.fnmatchcase(n, p) for p in pats))
        by = {k: [n for n in names if (codes[n] in v if v is not None else False)]
              for k, v in (("detected", DETECTED), ("survived", SURVIVED), ("not_run", NOT_RUN))}
        other = [n for n in names if not any(n in v for v in by.values())]
        rows.append({"label": label, "file": path, "total": len(names), **by, "other": other})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    parser.add_argument("--patterns", nargs="*", metavar="GROUP", default=None,
                        help="print the mutant name patterns of these groups (all without "
                             "names), one a line")
    parser.add_argument("--quick-config", nargs="+", metavar="GROUP_OR_NAME", default=None,
                        help="print pyproject.toml with the test selection narrowed to the own "
                             "test files of these groups, or of the groups of these mutant "
                             "names (QUICK=1 bash tools/mutation.sh)")
    args = parser.parse_args(argv)
    if args.quick_config is not None:
        print(quick_config(args.quick_config), end="")
        return 0
    if args.patterns is not None:
        print(*patterns(args.patterns), sep="\n")
        return 0
    codes = results()
    if not codes:
        print("error: no mutation results in mutants/: run tools/mutation.sh first",
              file=sys.stderr)
        return 1
    rows = score(codes)
    if args.markdown:
        print("| mutated | mutants | detected | survived | score |")
        print("|---|---|---|---|---|")
    for r in rows:
        checked = r["total"] - len(r["not_run"])
        pct = f"{100 * len(r['detected']) / checked:.1f}%" if checked else "-"
        if args.markdown:
            print(f"| {r['label']} | {r['total']} | {len(r['detected'])} | "
                  f"{len(r['survived'])} | {pct} |")
        else:
            print(f"{r['label']}: {len(r['detected'])} of {checked} detected ({pct}), "
                  f"{len(r['survived'])} survived, {len(r['not_run'])} not run"
                  + (f", {len(r['other'])} other" if r["other"] else ""))
    if not args.markdown:
        for r in rows:
            for name in r["survived"] + r["other"]:
                print(f"  survived: {name}" if name in r["survived"]
                      else f"  {codes[name]}: {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
