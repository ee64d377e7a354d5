import math
import re
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from common import data
from common.device import available_devices
from common.model import GST
from conftest import course_test_pass, load_script, only_run, scalar_tags, scalars

p24 = load_script("p24_train_gpu")


@pytest.fixture
def small_fake(monkeypatch):
    # 400 images in batches of 4: 100 steps per epoch, so a print every 10 steps.
    monkeypatch.setattr(data, "FAKE_TRAIN_SIZE", 400)
    monkeypatch.setattr(data, "FAKE_TEST_SIZE", 42)   # 10 x 4 + 2: a partial last batch


def _paths(tmp_path):
    return ["--logdir", str(tmp_path / "logs"), "--data-root", str(tmp_path / "data")]


def test_help_exits_0(capsys):
    with pytest.raises(SystemExit) as e:
        p24.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "P24 利用GPU训练" in out and "--method {cuda,to-device}" in out


class ForwardClock:
    """A clock for p24's ``time.time()`` that moves one second per forward pass of GST (a
    training or a test batch) and not otherwise: what each printed time must be is then
    known exactly."""

    def __init__(self):
        self.now = 1000.0            # not 0: "elapsed" must be a difference of two readings

    def __call__(self):
        return self.now

    def tick(self, module, args):
        if isinstance(module, GST):
            self.now += 1.0


@pytest.fixture
def clock(monkeypatch):
    clock = ForwardClock()
    handle = nn.modules.module.register_module_forward_pre_hook(clock.tick)
    monkeypatch.setattr(p24, "time", SimpleNamespace(time=clock))
    yield clock
    handle.remove()


def test_to_device_trains_and_times_each_epoch(tmp_path, small_fake, clock, capsys):
    rc = p24.main(["--fake-data", "--epochs", "2", "--batch-size", "4", "--seed", "0",
                   "--device", "cpu", *_paths(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "method: to-device, device: cpu" in out
    assert "训练数据集的长度为：400" in out and "测试数据集的长度为：42" in out
    assert out.splitlines()[0] == data.synthetic_note()
    assert [int(s) for s in re.findall(r"^训练次数：(\d+), Loss: [\d.]+$", out, re.M)] == list(
        range(10, 201, 10))
    # 100 training batches an epoch, then 11 test batches (42 = 10 x 4 + 2): "elapsed" counts
    # from the start of training, each epoch's time from the start of that epoch only
    elapsed = [float(t) for t in re.findall(r"^用时 / elapsed: ([\d.]+)s$", out, re.M)]
    assert elapsed == [*range(10, 101, 10), *range(111 + 10, 111 + 101, 10)]
    assert re.findall(r"^第 (\d) 轮训练用时 / epoch time: ([\d.]+)s$", out, re.M) == [("1", "100.00"),
                                                                          ("2", "100.00")]
    acc = [float(a) for a in re.findall(r"整体测试集上的正确率: ([\d.]+)", out)]
    assert len(acc) == 2 and all(round(a * 42) == pytest.approx(a * 42) for a in acc)

    run = only_run(tmp_path / "logs", "p24_train_gpu")
    assert {"train_loss", "test_loss", "test_accuracy"} <= scalar_tags(run)
    assert [s for s, _ in scalars(run, "train_loss")] == list(range(10, 201, 10))
    assert [s for s, _ in scalars(run, "test_accuracy")] == [0, 1]
    assert [v for _, v in scalars(run, "test_accuracy")] == pytest.approx(acc)


def test_the_printed_test_numbers_against_an_oracle(tmp_path, small_fake, monkeypatch, capsys):
    models = []
    monkeypatch.setattr(p24, "GST", lambda: models.append(GST()) or models[-1])
    assert p24.main(["--fake-data", "--epochs", "1", "--batch-size", "4", "--seed", "0",
                     "--device", "cpu", *_paths(tmp_path)]) == 0
    out = capsys.readouterr().out
    (gst,) = models
    images, targets = data.cifar_uint8(data.FakeCIFAR10(train=False))
    oracle_loss, right = course_test_pass(gst, images, targets, 4)
    (loss,) = re.findall(r"整体测试集上的Loss: ([\d.]+)", out)
    (accuracy,) = re.findall(r"整体测试集上的正确率: ([\d.]+)", out)
    assert float(loss) == pytest.approx(oracle_loss, rel=1e-5)
    assert float(accuracy) == pytest.approx(right / 42)


@pytest.mark.parametrize("method", ["cuda", "to-device"])
def test_test_returns_the_course_numbers(method, pretend_cuda):
    # 45 images in batches of 8: the last batch of 5 counts in the loss and the accuracy
    torch.manual_seed(0)
    gst = GST()
    images = torch.randint(0, 256, (45, 3, 32, 32), dtype=torch.uint8)
    targets = torch.randint(0, 10, (45,))
    loader = DataLoader(TensorDataset(images.float() / 255, targets), batch_size=8)
    pretend_cuda["to"] = "cpu"
    total_test_loss, total_accuracy = p24.test(gst, nn.CrossEntropyLoss(), loader, method,
                                               torch.device("cpu"))
    oracle_loss, right = course_test_pass(gst, images, targets, 8)
    assert total_test_loss == pytest.approx(oracle_loss, rel=1e-5)
    assert total_accuracy == right
    assert gst.training is False


def twenty_images():
    """20 random CIFAR-sized images in batches of 8 (8, 8 and 4), on the CPU."""
    return DataLoader(TensorDataset(torch.rand(20, 3, 32, 32), torch.randint(0, 10, (20,))),
                      batch_size=8)


class Placed:
    """Where the model's parameters and each batch were when GST and the loss saw them."""

    def __init__(self, gst):
        self.model, self.inputs, self.targets = [], [], []
        gst.register_forward_pre_hook(lambda m, args: self.inputs.append(args[0].device)
                                      or self.model.append(next(m.parameters()).device))

    def loss(self, outputs, targets):
        self.targets.append((outputs.device, targets.device))
        return nn.functional.cross_entropy(outputs, targets)


@pytest.mark.parametrize("method", ["cuda", "to-device"])
def test_each_method_moves_every_batch_to_the_device(method, pretend_cuda):
    # PyTorch's meta device (shapes, no values) stands in for the GPU a CPU machine lacks:
    # a batch left on the CPU meets the model's meta weights and fails, as it would on CUDA.
    meta = torch.device("meta")
    gst = GST().cuda() if method == "cuda" else GST().to(meta)
    placed = Placed(gst)
    loader = twenty_images()
    optimizer = torch.optim.SGD(gst.parameters(), lr=0.01)
    steps = p24.train(gst, placed.loss, optimizer, loader, method, meta, 5, None, 100, 0.0)
    assert steps == 5 + 3
    assert placed.inputs == placed.model == [meta] * 3
    assert placed.targets == [(meta, meta)] * 3
    assert gst.training
    # the test pass moves its batches too: it gets as far as reading the loss (.item(),
    # which a meta tensor has no value for) with everything on the device
    with pytest.raises(RuntimeError, match=r"^Tensor.item\(\) cannot be called on meta tensors$"):
        p24.test(gst, placed.loss, loader, method, meta)
    assert placed.inputs[-1] == meta and placed.targets[-1] == (meta, meta)


def test_both_methods_train_the_same_numbers(tmp_path, small_fake, pretend_cuda, capsys):
    # On the CPU (.cuda() pretended), the lesson's two ways must be the same training
    pretend_cuda["to"] = "cpu"
    outs = []
    for method, device in (("cuda", "auto"), ("to-device", "cpu")):
        argv = ["--method", method, "--device", device, "--fake-data", "--epochs", "1",
                "--batch-size", "8", "--seed", "0", *_paths(tmp_path / method)]
        assert p24.main(argv) == 0
        outs.append(capsys.readouterr().out)
    numbers = [re.findall(r"(?:Loss|正确率): ([\d.]+)", out) for out in outs]
    # 50 steps: a loss every 5 (log_interval), then the test loss and the accuracy
    assert len(numbers[0]) == 50 // 5 + 2 and numbers[0] == numbers[1]
    assert "method: cuda, device: cuda" in outs[0]
    assert pretend_cuda["modules"] == [GST.__name__, nn.CrossEntropyLoss.__name__]


def test_method_cuda_without_a_gpu_is_one_line(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert p24.main(["--method", "cuda", "--fake-data", *_paths(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == ("error: --method cuda needs an NVIDIA GPU (torch.cuda.is_available() is False); "
                   f"available: {', '.join(available_devices())}. Use --method to-device --device auto\n")
    assert not (tmp_path / "logs").exists()


@pytest.fixture
def pretend_cuda(monkeypatch):
    """CUDA that isn't there: .cuda() moves a module or a tensor to ``moved["to"]`` (the meta
    device, standing in for the GPU; "cpu" where the numbers are wanted) and records the
    modules moved, so the lesson's first way runs its real code path on any machine."""
    moved = {"modules": [], "to": "meta"}

    def module_cuda(self, device=None):
        moved["modules"].append(type(self).__name__)
        return self.to(moved["to"])

    def tensor_cuda(self, *args, **kwargs):
        return self.to(moved["to"])

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(nn.Module, "cuda", module_cuda)
    monkeypatch.setattr(torch.Tensor, "cuda", tensor_cuda)
    monkeypatch.setattr(p24, "synchronize", lambda device: None)
    return moved


def test_method_cuda_with_another_device_is_one_line(tmp_path, pretend_cuda, capsys):
    assert p24.main(["--method", "cuda", "--device", "cpu", "--fake-data", *_paths(tmp_path)]) == 1
    assert capsys.readouterr().err == ("error: --method cuda always trains on the NVIDIA GPU; "
                                       "for --device cpu use --method to-device\n")


def test_offline_without_cifar_is_one_line(tmp_path, offline, capsys):
    assert p24.main(["--device", "cpu", *_paths(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: CIFAR-10 is not in") and err.count("\n") == 1
    assert not (tmp_path / "logs").exists()


def test_a_loss_that_runs_away_stops_with_one_line(tmp_path, small_fake, capsys):
    assert p24.main(["--fake-data", "--epochs", "2", "--lr", "100", "--batch-size", "4",
                     "--device", "cpu", *_paths(tmp_path)]) == 1
    captured = capsys.readouterr()
    # stopped at the first printed loss that is nan or inf, not at the end of the epoch
    losses = re.findall(r"^训练次数：(\d+), Loss: (\S+)$", captured.out, re.M)
    step, loss = losses[-1]
    assert loss in ("nan", "inf") and all(math.isfinite(float(v)) for _, v in losses[:-1])
    assert int(step) < 100                  # of the epoch's 100 steps (small_fake)
    assert "整体测试集上的Loss" not in captured.out and "第 2 轮" not in captured.out
    assert captured.err == (f"error: training diverged: the loss is {loss} at step {step} "
                            "(--lr 100.0): start again with a smaller --lr, such as the "
                            "course's 0.01\n")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("method", ["cuda", "to-device"])
def test_on_a_real_gpu_each_method_puts_everything_on_it(method):
    cuda = torch.device("cuda")
    gst = GST().cuda() if method == "cuda" else GST().to(cuda)
    placed = Placed(gst)
    loader = twenty_images()
    optimizer = torch.optim.SGD(gst.parameters(), lr=0.01)
    assert p24.train(gst, placed.loss, optimizer, loader, method, cuda, 0, None, 100, 0.0) == 3
    total_test_loss, total_accuracy = p24.test(gst, placed.loss, loader, method, cuda)
    assert {d.type for d in placed.inputs + placed.model} == {"cuda"}
    assert {d.type for pair in placed.targets for d in pair} == {"cuda"}
    assert total_test_loss > 0 and 0 <= total_accuracy <= 20
