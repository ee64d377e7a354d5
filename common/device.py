"""``--device`` to a ``torch.device``, with ``torch.accelerator`` deciding what exists."""
from __future__ import annotations

import os

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

    CUDA: compute capability 8.0 (Ampere) or newer. CPU: bf16 instructions, AVX-512 BF16 or
    AMX. oneDNN also runs bf16 on plain AVX-512 (``torch.ops.mkldnn._is_mkldnn_bf16_supported``
    says yes there) by converting to fp32 and back, which is slower than fp32 itself: on an
    Intel Xeon with AVX-512 but no AVX-512 BF16, p23 ``--amp`` trained at half p23's speed.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        checks = [getattr(torch.cpu, name, None)
                  for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        if all(check is None for check in checks):   # a torch without them: ask oneDNN
            check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
            return bool(check()) if check is not None else True
        return any(bool(check()) for check in checks if check is not None)
    # MPS: PyTorch has no query, and Apple GPUs are reported to train no faster in bf16 than
    # in fp32 (M1 and M2 emulate it; pytorch/pytorch#139386, huggingface/transformers#40458).
    return False


def need_bf16(device: torch.device) -> None:
    """Refuse ``--amp`` in one line where autocast would turn itself off with a warning and
    train in fp32 while the run says bf16: bfloat16 on MPS before macOS 14."""
    if device.type == "mps" and not torch.backends.mps.is_macos_or_newer(14, 0):
        raise UserError("--amp: bfloat16 on mps needs macOS 14 or newer; "
                        "train without --amp here")


def choose_kernels(device: torch.device, repeatable: bool) -> None:
    """How cuDNN picks its kernels for a training run on ``device``, as torchvision's
    reference ``train.py`` does.

    A run that must repeat (``--seed`` given) gets deterministic kernels: cuDNN's autotuner
    off (it times candidates and may pick another one next run) and
    ``torch.use_deterministic_algorithms``; cuBLAS then needs ``CUBLAS_WORKSPACE_CONFIG``,
    set here before its first use. ``warn_only``: an op with no deterministic kernel warns
    rather than stopping a lesson. Otherwise the autotuner picks the fastest kernels for
    these shapes (``cudnn.benchmark``). CPU and MPS runs are left as they are: a seed
    already repeats them.
    """
    if device.type != "cuda":
        return
    if repeatable:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.backends.cudnn.benchmark = True
