from conftest import events, scalars

from common import writer


def test_make_writer_never_reuses_a_run_folder(tmp_path, capsys):
    for _ in range(3):
        writer.make_writer(tmp_path, "p07_tensorboard", run_id="20260101-000000").close()
    assert sorted(p.name for p in (tmp_path / "p07_tensorboard").iterdir()) == [
        "20260101-000000", "20260101-000000-2", "20260101-000000-3"]


def test_open_writer_with_purge_step_continues_one_curve(tmp_path, capsys):
    run = tmp_path / "demo" / "r"
    w = writer.open_writer(run, tmp_path)
    for step in range(1, 11):                  # an interrupted run: logged up to step 10...
        w.add_scalar("train_loss", 1.0, step)
    w.close()
    w = writer.open_writer(run, tmp_path, purge_step=7)   # ...but its checkpoint was at step 6
    for step in range(7, 13):
        w.add_scalar("train_loss", 2.0, step)
    w.close()
    assert scalars(run, "train_loss") == [(s, 1.0) for s in range(1, 7)] + [(s, 2.0) for s in range(7, 13)]


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
