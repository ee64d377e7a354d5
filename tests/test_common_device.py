import os

import pytest
import torch

from common import cli, device
from common.cli import UserError
from common.device import choose_kernels


def test_cpu_always_available():
    assert device.available_devices()[0] == "cpu"
    assert device.get_device("cpu") == torch.device("cpu")


def test_auto_is_cpu_without_accelerator(monkeypatch):
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: False)
    assert device.get_device("auto") == torch.device("cpu")
    assert device.available_devices() == ["cpu"]


def test_auto_picks_the_accelerator_when_there_is_one(monkeypatch):
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: True)
    monkeypatch.setattr(torch.accelerator, "current_accelerator", lambda: torch.device("mps"))
    assert device.get_device("auto") == torch.device("mps")
    assert device.available_devices() == ["cpu", "mps"]
    assert device.get_device("mps") == torch.device("mps")


@pytest.mark.parametrize("name", ["cuda", "mps"])
def test_missing_device_is_one_line_naming_what_exists(monkeypatch, name):
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: False)
    with pytest.raises(UserError) as e:
        device.get_device(name)
    msg = str(e.value)
    assert msg == (f"device '{name}' is not available on this machine; "
                   "available: cpu (or --device auto)")
    assert "\n" not in msg


def test_entrypoint_turns_missing_device_into_error_line(monkeypatch, capsys):
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: False)

    @cli.entrypoint
    def main(argv=None):
        args = cli.parser(None, cli.device_flags()).parse_args(argv)
        device.get_device(args.device)
        return 0

    assert main(["--device", "cuda"]) == 1
    err = capsys.readouterr().err
    assert err == ("error: device 'cuda' is not available on this machine; "
                   "available: cpu (or --device auto)\n")
    assert main(["--device", "cpu"]) == 0


@pytest.fixture
def kernel_settings(monkeypatch):
    """choose_kernels sets process-wide switches: put them back after the test."""
    benchmark, mode = torch.backends.cudnn.benchmark, torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    yield
    torch.backends.cudnn.benchmark = benchmark
    torch.use_deterministic_algorithms(mode, warn_only=warn_only)


def test_a_seeded_cuda_run_gets_deterministic_kernels(kernel_settings):
    # as torchvision's reference train.py: the autotuner off, deterministic algorithms on
    choose_kernels(torch.device("cuda"), repeatable=True)
    assert torch.backends.cudnn.benchmark is False
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_an_unseeded_cuda_run_gets_the_fastest_kernels(kernel_settings):
    torch.use_deterministic_algorithms(False)
    choose_kernels(torch.device("cuda"), repeatable=False)
    assert torch.backends.cudnn.benchmark is True
    assert not torch.are_deterministic_algorithms_enabled()
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ


@pytest.mark.parametrize("device", ["cpu", "mps"])
def test_cpu_and_mps_runs_are_left_as_they_are(device, kernel_settings):
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(False)
    choose_kernels(torch.device(device), repeatable=True)
    assert torch.backends.cudnn.benchmark is False
    assert not torch.are_deterministic_algorithms_enabled()
