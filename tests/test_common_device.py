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


def _cpu_flags() -> set[str] | None:
    """The CPU's feature flags as Linux reports them (None off Linux): the oracle for fast_bf16."""
    try:
        text = open("/proc/cpuinfo", encoding="ascii", errors="replace").read()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return None


@pytest.mark.skipif(_cpu_flags() is None, reason="reads the CPU's flags from /proc/cpuinfo")
def test_fast_bf16_on_this_cpu_is_whether_it_has_bf16_instructions():
    flags = _cpu_flags()
    has_bf16 = bool({"avx512_bf16", "amx_bf16"} & flags)
    assert device.fast_bf16(torch.device("cpu")) is has_bf16


@pytest.mark.parametrize("avx512_bf16, amx, fast", [
    (False, False, False),   # plain AVX-512: oneDNN emulates bf16, slower than fp32
    (True, False, True),
    (False, True, True),
])
def test_fast_bf16_needs_bf16_instructions_not_avx512_alone(monkeypatch, avx512_bf16, amx, fast):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16,
                        raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_supported", lambda: True, raising=False)
    assert device.fast_bf16(torch.device("cpu")) is fast


def test_fast_bf16_on_a_torch_without_the_cpu_checks_asks_onednn(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    for onednn in (True, False):
        monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: onednn,
                            raising=False)
        assert device.fast_bf16(torch.device("cpu")) is onednn


def test_fast_bf16_is_false_on_mps_where_bf16_is_reported_no_faster():
    assert device.fast_bf16(torch.device("mps")) is False
