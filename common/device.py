"""``--device`` to a ``torch.device``, with ``torch.accelerator`` deciding what exists."""
from __future__ import annotations

import torch

from common.cli import UserError


def available_devices() -> list[str]:
    """The device names this machine can use, cpu first: e.g. ``['cpu', 'cuda']``."""
    names = ["cpu"]
    if torch.accelerator.is_available():
        names.append(torch.accelerator.current_accelerator().type)
    return names


def get_device(name: str = "auto") -> torch.device:
    """``auto`` -> the accelerator if there is one, else cpu; a named one must exist here.

    >>> get_device("cpu")
    device(type='cpu')
    """
    if name == "auto":
        if torch.accelerator.is_available():
            return torch.accelerator.current_accelerator()
        return torch.device("cpu")
    if name not in available_devices():
        raise UserError(f"device '{name}' is not available on this machine; "
                        f"available: {', '.join(available_devices())} (or --device auto)")
    return torch.device(name)


def synchronize(device: torch.device) -> None:
    """Wait for queued work on ``device`` to finish, so a timer measures real work."""
    if device.type != "cpu":
        torch.accelerator.synchronize()


def fast_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively, so bf16 autocast can pay off there.

    CUDA: compute capability 8.0 (Ampere) or newer. CPU: oneDNN's bf16 kernels (AVX-512 or
    AMX); without them a bf16 convolution falls back to slow reference code.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        return bool(check()) if check is not None else True
    return True
