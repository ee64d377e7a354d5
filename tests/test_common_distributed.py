"""common/distributed without torchrun (one process: everything is the identity) and its
reading of torchrun's environment. Two real processes: tests/test_p23_torchrun.py."""
import pytest
import torch
import torch.distributed as dist

from common import distributed
from conftest import one_process_launch


def test_a_plain_run_is_one_process_and_touches_no_process_group(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    w = distributed.world()
    assert w == distributed.World() and not w.launched and w.is_main and w.world_size == 1
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model, w, torch.device("cpu")) is model
    with distributed.process_group(w, torch.device("cpu")):
        assert not dist.is_initialized()
    loss = torch.tensor(2.5)
    assert distributed.mean(loss) is loss
    assert distributed.sum_all([torch.tensor(1.5), 2]) == [1.5, 2.0]
    assert distributed.gather([3, 4]) == [[3, 4]]
    g = torch.Generator().manual_seed(1)
    before = g.get_state()
    distributed.share_generator(g)
    assert torch.equal(g.get_state(), before)
    assert distributed.launcher(w) is None


def test_torchruns_environment(monkeypatch):
    env = {"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4",
           "TORCHELASTIC_RUN_ID": "abc", "TORCHELASTIC_RESTART_COUNT": "2"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    w = distributed.world()
    assert (w.launched, w.rank, w.world_size, w.local_rank, w.local_world_size, w.launch_id,
            w.restart, w.machines, w.is_main) == (True, 5, 8, 1, 4, "abc", 2, 2, False)
    assert distributed.launcher(w)[:3] == ["torchrun", "--nnodes=2", "--nproc-per-node=4"]
    one_machine = distributed.World(launched=True, world_size=2, local_world_size=2)
    assert distributed.launcher(one_machine) == ["torchrun", "--standalone",
                                                 "--nproc-per-node=2"]


def test_a_failed_collective_is_told_apart_from_a_bug():
    gloo = RuntimeError("[/x/gloo/transport/tcp/pair.cc:561] Connection closed by peer "
                        "[127.0.0.1]:1234. This is typically caused by a remote worker crashing.")
    assert distributed.peer_failure(gloo) == "Connection closed by peer [127.0.0.1]:1234"
    assert distributed.peer_failure(dist.DistNetworkError("store gone")) == "store gone"
    assert distributed.peer_failure(RuntimeError("mat1 and mat2 shapes cannot be "
                                                 "multiplied")) is None


def test_ctrl_c_in_a_process_group_is_marked_to_end_the_process_at_once(monkeypatch):
    # a real one-process gloo group, as torchrun --nproc-per-node 1 makes
    one_process_launch(monkeypatch)
    w = distributed.world()
    assert w.launched
    with pytest.raises(KeyboardInterrupt) as caught:
        with distributed.process_group(w, torch.device("cpu"), timeout_s=30):
            assert dist.is_initialized() and dist.get_world_size() == 1
            raise KeyboardInterrupt("stopped")
    assert caught.value.exit_at_once is True and str(caught.value) == "stopped"
    assert not dist.is_initialized()
    # anything else passes through unmarked
    one_process_launch(monkeypatch)                  # a new port for a new group
    with pytest.raises(ValueError) as other:
        with distributed.process_group(w, torch.device("cpu"), timeout_s=30):
            raise ValueError("a bug")
    assert not hasattr(other.value, "exit_at_once")

