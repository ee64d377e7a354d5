import pytest
import torch

from common import cli, device
from common.cli import UserError


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
