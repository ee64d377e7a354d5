import argparse
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from common import cli, paths
from conftest import SCRIPTS, load_script, no_launch


@pytest.mark.repository_defaults
def test_shared_flags_have_one_spelling_and_the_course_defaults():
    p = cli.parser("doc", cli.device_flags(), cli.data_flags(), cli.logdir_flags(),
                   cli.checkpoint_flags(), cli.train_flags())
    args = p.parse_args([])
    assert args.device == "auto"
    assert args.data_root == paths.REPO_ROOT / "dataset"
    assert args.logdir == paths.REPO_ROOT / "logs"
    assert args.checkpoint_dir == paths.REPO_ROOT / "checkpoints"
    assert (args.batch_size, args.epochs, args.lr, args.seed) == (64, 10, 0.01, None)
    assert args.fake_data is False and args.num_workers == 0


@pytest.mark.repository_defaults
def test_defaults_resolve_against_the_repository_not_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = cli.parser(None, cli.logdir_flags()).parse_args([])
    assert args.logdir.is_absolute()
    assert args.logdir == Path(__file__).resolve().parent.parent / "logs"


def test_train_defaults_can_be_overridden_per_script():
    args = cli.parser(None, cli.train_flags(epochs=3, lr=0.1)).parse_args(["--seed", "7"])
    assert (args.epochs, args.lr, args.seed) == (3, 0.1, 7)


def test_help_names_every_default(capsys):
    p = cli.parser("doc", cli.device_flags(), cli.data_flags(), cli.train_flags())
    with pytest.raises(SystemExit) as e:
        p.parse_args(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for flag in ["--device", "--data-root", "--fake-data", "--num-workers",
                 "--batch-size", "--epochs", "--lr", "--seed"]:
        assert flag in out
    assert "(default: 64)" in out and "(default: 0.01)" in out and "(default: auto)" in out


@pytest.mark.parametrize("name", sorted(p.stem for p in SCRIPTS.glob("p[0-9][0-9]_*.py")))
def test_every_flag_of_every_script_says_its_default(name):
    """--help is where a learner looks: each flag's text ends by naming what it does unset,
    switches included (--fake-data: off, the real CIFAR-10)."""
    parser = load_script(name).get_args_parser()
    flags = [a for a in parser._actions
             if a.option_strings and not isinstance(a, argparse._HelpAction)]
    assert [a.option_strings[0] for a in flags if "(default" not in (a.help or "")] == []


def test_entrypoint_error_and_interrupt(capsys):
    @cli.entrypoint
    def fails(argv=None):
        raise cli.UserError("no such file: x.png")

    @cli.entrypoint
    def interrupted(argv=None):
        raise KeyboardInterrupt

    assert fails([]) == 1
    assert capsys.readouterr().err == "error: no such file: x.png\n"
    assert interrupted([]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_sigterm_stops_a_script_as_ctrl_c_does_and_exits_143(capsys, monkeypatch):
    """`kill PID` (SIGTERM), really sent: the same clean stop as Ctrl-C, with the script's
    own line, exit 128 + 15; the handler is put back afterwards. Under torchrun, whose agent
    stops its processes with SIGTERM, it is left alone."""
    no_launch(monkeypatch)
    before = signal.getsignal(signal.SIGTERM)
    epochs = []

    @cli.entrypoint
    def training(argv=None):
        try:
            for epoch in range(1, 1000):
                epochs.append(epoch)
                if epoch == 3:
                    os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.01)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(f"stopped during epoch {epoch}: gst_1.pth holds "
                                    f"epoch {epoch - 1}") from None
        return 0

    assert training([]) == 143
    assert capsys.readouterr().err == "stopped during epoch 3: gst_1.pth holds epoch 2\n"
    assert epochs == [1, 2, 3]
    assert signal.getsignal(signal.SIGTERM) == before

    @cli.entrypoint
    def bare(argv=None):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)

    assert bare([]) == 143 and capsys.readouterr().err == "terminated\n"

    @cli.entrypoint
    def handler_inside(argv=None):
        return signal.getsignal(signal.SIGTERM)

    assert handler_inside([]) is not before                # installed for the run...
    for launched in ("LOCAL_RANK", "TORCHELASTIC_RUN_ID", "RANK"):
        with monkeypatch.context() as m:
            m.setenv(launched, "0")
            assert handler_inside([]) is before            # ...but not under torchrun
    in_thread = []
    worker = threading.Thread(target=lambda: in_thread.append(handler_inside([])))
    worker.start()
    worker.join()
    assert in_thread == [before]                           # nor outside the main thread


def test_finishing_holds_a_stop_until_what_it_writes_is_written(capsys, monkeypatch):
    """Ctrl-C (SIGINT) or `kill` (SIGTERM) inside ``finishing``: the block runs to its end, then
    the stop is raised as it would have been (exit 130 / 143); a second one stops at once."""
    no_launch(monkeypatch)
    before = {signum: signal.signal(signum, handler) for signum, handler in
              ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL))}
    try:
        for signum, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
            written = []

            @cli.entrypoint
            def saving(argv=None):
                with cli.finishing("the checkpoint"):
                    os.kill(os.getpid(), signum)
                    time.sleep(0.05)            # where the stop would have landed
                    written.append("whole")
                written.append("after")          # never: the stop comes before this
                return 0

            assert saving([]) == code and written == ["whole"]
            again = "Ctrl-C again" if code == 130 else "a second kill"
            assert capsys.readouterr().err == (f"finishing the checkpoint, then stopping ({again} "
                                               "stops at once)\n" +
                                               ("interrupted\n" if code == 130 else "terminated\n"))
            assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # put back

        with pytest.raises(KeyboardInterrupt):
            with cli.finishing("the checkpoint"):
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)          # the second: at once
                written.append("never")
        assert written == ["whole"] and signal.getsignal(signal.SIGINT) is signal.default_int_handler

        # What raises no KeyboardInterrupt here is left alone: torchrun's SIGTERM (the default),
        # and everything outside the main thread.
        with cli.finishing("x"):
            assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
            assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        seen = []
        worker = threading.Thread(target=lambda: seen.append(
            cli.finishing("x").__enter__() or signal.getsignal(signal.SIGINT)))
        worker.start()
        worker.join()
        assert seen == [signal.default_int_handler]
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def test_a_kill_while_finishing_sets_its_handlers_leaves_none_behind(monkeypatch, capsys):
    """A SIGTERM between the SIGINT and the SIGTERM install (sent from inside the first) stops
    at once, before the block, as it would have without it; both handlers are put back (a
    SIGINT left held swallowed every later Ctrl-C)."""
    no_launch(monkeypatch)
    real = signal.signal
    before = {signal.SIGINT: real(signal.SIGINT, signal.default_int_handler),
              signal.SIGTERM: real(signal.SIGTERM, cli._Terminated.handler)}

    def signal_then_kill(signum, handler):
        old = real(signum, handler)
        if signum == signal.SIGINT and handler is not signal.default_int_handler:
            os.kill(os.getpid(), signal.SIGTERM)            # between the two installs
            time.sleep(0.05)
        return old

    written = []
    try:
        monkeypatch.setattr(signal, "signal", signal_then_kill)
        with pytest.raises(KeyboardInterrupt):
            with cli.finishing("the checkpoint"):
                written.append("whole")
        monkeypatch.setattr(signal, "signal", real)
        assert written == [] and capsys.readouterr().err == ""
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGTERM) == cli._Terminated.handler
    finally:
        cli._Terminated.received = False
        for signum, handler in before.items():
            real(signum, handler)


def test_an_interrupt_marked_exit_at_once_ends_the_process_after_its_line(capsys, monkeypatch):
    # what distributed.process_group marks under torchrun: no clean-up that could hang
    exits = []

    def _exit(code):
        exits.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(cli.os, "_exit", _exit)

    @cli.entrypoint
    def interrupted(argv=None):
        print("epoch 3 done")
        e = KeyboardInterrupt("stopped during epoch 4 of 10: gst_2.pth holds epoch 3")
        e.exit_at_once = True
        raise e

    with pytest.raises(SystemExit):
        interrupted([])
    assert exits == [130]
    captured = capsys.readouterr()
    assert captured.out == "epoch 3 done\n"
    assert captured.err == "stopped during epoch 4 of 10: gst_2.pth holds epoch 3\n"


def test_entrypoint_stops_quietly_on_a_closed_pipe(capsys):
    @cli.entrypoint
    def piped(argv=None):
        print("first line")
        raise BrokenPipeError

    assert piped([]) == 1
    assert capsys.readouterr().err == ""


def test_entrypoint_lets_bugs_raise():
    @cli.entrypoint
    def buggy(argv=None):
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        buggy([])


def test_without_drops_a_flag_and_its_value_in_either_spelling():
    argv = ["--fake-data", "--resume", "last", "--lr", "0.1", "--resume=x.pth", "--resumed", "1"]
    assert cli.without(argv, "--resume") == ["--fake-data", "--lr", "0.1", "--resumed", "1"]
    assert cli.without(argv, "--lr") == ["--fake-data", "--resume", "last", "--resume=x.pth",
                                         "--resumed", "1"]
    assert cli.without(argv, "--epochs") == argv
    assert cli.without(["--res", "last", "--fake-data", "--resu=x", "--"], "--resume") == [
        "--fake-data", "--"]                    # argparse's abbreviations, which it parsed


def test_counted_is_plural_but_for_one():
    assert [cli.counted(n, "epoch") for n in (0, 1, 2)] == ["0 epochs", "1 epoch", "2 epochs"]
    assert [cli.counted(n, "class", "classes") for n in (1, 10)] == ["1 class", "10 classes"]


def test_a_printed_command_says_python_only_where_the_shell_finds_this_interpreter(
        tmp_path, monkeypatch):
    """An activated venv: `python`. A venv run by its path, with the Python it links to first
    on PATH: its full path, since `python` there would lack the venv's packages (torch)."""
    base = tmp_path / "base" / "bin"
    venv = tmp_path / "venv" / "bin"
    for folder in (base, venv):
        folder.mkdir(parents=True)
    (base / "python").write_text("#!/bin/sh\n")
    (base / "python").chmod(0o755)
    (venv / "python").symlink_to(base / "python")      # as `python -m venv` makes it
    monkeypatch.setattr(cli.sys, "executable", str(venv / "python"))
    monkeypatch.setenv("PATH", f"{venv}:{base}")                     # activated
    assert cli.command_line("scripts/p23_train.py", "--resume", "last") == (
        "python scripts/p23_train.py --resume last")
    monkeypatch.setenv("PATH", str(base))                           # not activated
    assert cli.command_line("scripts/p23_train.py") == f"{venv / 'python'} scripts/p23_train.py"
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))           # no python on PATH
    assert cli.command_line("x.py") == f"{venv / 'python'} x.py"
    launched = cli.command_line("x.py", launcher=["torchrun", "--standalone"])
    assert launched == "torchrun --standalone x.py"              # no torchrun in the venv
    (venv / "torchrun").write_text("#!/bin/sh\n")                 # pip's script in the venv
    (venv / "torchrun").chmod(0o755)
    launched = cli.command_line("x.py", launcher=["torchrun", "--standalone"])
    assert launched == f"{venv / 'torchrun'} --standalone x.py"   # not activated: its path
    monkeypatch.setenv("PATH", f"{venv}:{base}")                     # activated
    assert cli.command_line("x.py", launcher=["torchrun"]) == "torchrun x.py"
