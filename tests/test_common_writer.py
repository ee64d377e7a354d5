from conftest import events, scalars

from common import writer


def test_run_dir_layout_and_never_reused(tmp_path):
    a = writer.new_run_dir(tmp_path, "p07_tensorboard", run_id="20260101-000000")
    b = writer.new_run_dir(tmp_path, "p07_tensorboard", run_id="20260101-000000")
    c = writer.new_run_dir(tmp_path, "p07_tensorboard", run_id="20260101-000000")
    assert a == tmp_path / "p07_tensorboard" / "20260101-000000"
    assert b == tmp_path / "p07_tensorboard" / "20260101-000000-2"
    assert c == tmp_path / "p07_tensorboard" / "20260101-000000-3"
    assert all(p.is_dir() for p in (a, b, c))


def test_default_run_id_is_a_timestamp_and_runs_do_not_mix(tmp_path, capsys):
    for value in (1.0, 2.0):
        w = writer.make_writer(tmp_path, "demo")
        w.add_scalar("y", value, 0)
        w.close()
    runs = sorted((tmp_path / "demo").iterdir())
    assert len(runs) == 2
    assert runs[0].name[:8].isdigit() and runs[0].name[8] == "-"
    # each run holds only its own point: a rerun never mixes into an earlier curve
    assert sorted(scalars(r, "y")[0][1] for r in runs) == [1.0, 2.0]
    assert all(len(scalars(r, "y")) == 1 for r in runs)
    assert f"tensorboard --logdir {tmp_path}" in capsys.readouterr().out
    assert "y" in events(runs[0]).Tags()["scalars"]
