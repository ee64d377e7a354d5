"""Every numeric flag of every script is checked where it is parsed.

The flags are read from each script's own parser, so a new flag is covered with no new test.
A value out of range is argparse's error naming the flag, exit 2, before any work starts.
"""
import argparse
import re

import pytest

from common import cli
from conftest import SCRIPTS, load_script

CHECKED = {cli.positive_int, cli.workers_int, cli.positive_float, cli.seed_int,
           cli.momentum_float, cli.positive_int_or_all, cli.timeout_seconds}
# The flags for which 0 is a value with its plain meaning; for every other numeric flag 0 is
# refused (no "0 means all", no epochs that train nothing). -1 is refused everywhere.
ZERO_MEANS_ZERO = {"--seed", "--num-workers", "--momentum"}
NAMES = sorted(p.stem for p in SCRIPTS.glob("p[0-9][0-9]_*.py"))
POSITIONALS = {"p25_test": ["picture.png"]}


def numeric_flags(name):
    parser = load_script(name).get_args_parser()
    return parser, [a for a in parser._actions
                    if a.option_strings and a.type in (int, float, *CHECKED)]


def cases():
    for name in NAMES:
        for action in numeric_flags(name)[1]:
            for value in ("0", "-1"):
                yield pytest.param(name, action.option_strings[0], value,
                                   id=f"{name} {action.option_strings[0]} {value}")


def test_every_script_is_covered():
    assert len(NAMES) == 22
    flags = {flag for name in NAMES for a in numeric_flags(name)[1] for flag in a.option_strings}
    assert {"--batch-size", "--epochs", "--lr", "--seed", "--num-workers", "--momentum",
            "--topk", "--max-batches", "--crop-size", "--log-every"} <= flags


@pytest.mark.parametrize("name", NAMES)
def test_no_numeric_flag_is_unchecked(name):
    _, actions = numeric_flags(name)
    assert [a.option_strings for a in actions if a.type in (int, float)] == []


@pytest.mark.parametrize("name, flag, value", list(cases()))
def test_zero_and_minus_one(name, flag, value, capsys):
    argv = [*POSITIONALS.get(name, []), flag, value]
    if value == "0" and flag in ZERO_MEANS_ZERO:
        args = numeric_flags(name)[0].parse_args(argv)
        assert getattr(args, flag[2:].replace("-", "_")) == 0
        return
    with pytest.raises(SystemExit) as e:
        load_script(name).main(argv)            # the script's own entry: nothing runs
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert re.fullmatch(rf"error: argument {flag}: must be [^\n]+[,;] not {value} \(see --help\)\n",
                        err), err


@pytest.mark.parametrize("parse, text, expected", [
    (cli.positive_int, "3", 3), (cli.workers_int, "0", 0), (cli.positive_float, "1.5e-45", 1.5e-45),
    (cli.workers_int, str(cli.CPUS), cli.CPUS), (cli.timeout_seconds, "604800", 604800.0), (cli.positive_float, "1e-3", 0.001),
    (cli.seed_int, str(2**32 - 1), 2**32 - 1), (cli.momentum_float, "0.9", 0.9),
    (cli.positive_int_or_all, "all", None), (cli.positive_int_or_all, "ALL", None),
    (cli.positive_int_or_all, "7", 7),
])
def test_good_values(parse, text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize("parse, text, message", [
    (cli.positive_int, "1.5", "must be a whole number, 1 or more; not '1.5'"),
    (cli.positive_int, "ten", "must be a whole number, 1 or more; not 'ten'"),
    (cli.positive_float, "0.01x", "must be a number, above 0; not '0.01x'"),
    (cli.positive_float, "nan", "must be a finite number, above 0; not nan"),
    (cli.positive_float, "-inf", "must be a finite number, above 0; not -inf"),
    (cli.positive_float, "inf", "must be a finite number, above 0; not inf"),
    (cli.positive_float, "-1", "must be above 0, not -1"),
    (cli.positive_float, "1e39", "must be a number float32 holds (at most 3.403e+38), above 0; "
                                 "not 1e39"),       # else SGD's float32 step overflows: a traceback
    (cli.momentum_float, "nan", "must be a finite number, 0 or more and below 1; not nan"),
    (cli.seed_int, str(2**32), f"must be 0 to {2**32 - 1}, not {2**32}"),
    (cli.momentum_float, "1", "must be 0 or more and below 1, not 1"),
    (cli.positive_int_or_all, "none", "must be a whole number, 1 or more, or all; not 'none'"),
    (cli.positive_int_or_all, "0", "must be 1 or more, or all, not 0"),
    (cli.positive_int, str(2**63), f"must be a whole number torch holds (at most {2**63 - 1}), "
                                   f"1 or more; not {2**63}"),
    (cli.positive_int, "1" + "0" * 400, "must be a whole number torch holds (at most "
                                        f"{2**63 - 1}), 1 or more; not 100000000000...000000 "
                                        "(401 characters)"),
    # past Python's 4300-digit limit for int(), and a float of 400 digits: shown cut short
    (cli.positive_int, "1" * 5000, "must be a whole number, 1 or more; not 111111111111...111111 "
                                   "(5000 characters)"),
    (cli.positive_float, "1" * 400 + ".5", "must be a finite number, above 0; not "
                                           "111111111111...1111.5 (402 characters)"),
    # 0 in float32: SGD never moved a weight (p20's running_loss the same every epoch)
    (cli.positive_float, "1e-50", "must be a number float32 holds (at least 1.401e-45, else it "
                                  "is 0), above 0; not 1e-50"),
    # a hundred workers on a laptop: a hundred processes, and the system runs out of memory
    (cli.workers_int, str(cli.CPUS + 1), f"must be 0 to {cli.CPUS} (the CPUs here: each worker "
                                         f"is a process), not {cli.CPUS + 1}"),
    # gloo's clock overflows: 1e10 s timed out at once, 1e13 s was a traceback
    (cli.timeout_seconds, "1e10", "must be above 0 and at most 604800 (a week), not 1e10"),
    (cli.timeout_seconds, "0", "must be above 0 and at most 604800 (a week), not 0"),
])
def test_bad_values(parse, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as e:
        parse(text)
    assert str(e.value) == message


@pytest.mark.parametrize("name, flag", [
    pytest.param(name, a.option_strings[0], id=f"{name} {a.option_strings[0]}")
    for name in NAMES for a in numeric_flags(name)[1]
    if a.type in (cli.positive_int, cli.workers_int, cli.seed_int, cli.positive_int_or_all)])
def test_a_whole_number_past_any_float(name, flag, capsys):
    """10**400 is a Python int that no float holds: math.isfinite raised OverflowError there,
    which argparse does not catch (a traceback, for --epochs, --batch-size, --topk...)."""
    with pytest.raises(SystemExit) as e:
        load_script(name).main([*POSITIONALS.get(name, []), flag, "1" + "0" * 400])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert re.fullmatch(rf"error: argument {flag}: must be [^\n]+; not 100000000000\.\.\.000000 "
                        r"\(401 characters\) \(see --help\)\n", err), err
