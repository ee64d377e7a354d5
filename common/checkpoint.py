"""Checkpoints: atomic save of a plain dict, safe load, and one-line errors for bad files.

A checkpoint is a dict of plain data — state_dicts, numbers, strings, lists and
``vars(args)`` — so ``torch.load(weights_only=True)`` reads it and no code from the file is
ever run. p23_train writes these keys (p25 and ``--resume`` read them):

- ``arch`` ("GST"), ``model`` (its state_dict), ``optimizer`` (SGD's state_dict: momentum);
- ``epoch``: the 0-based index of the epoch just trained, the N of ``gst_N.pth``;
- ``total_train_step``, ``total_test_step``: the course's counters, where the curves go on;
- ``classes``, ``normalize`` (``(mean, std)`` after ToTensor, or None), ``data`` (its source);
- ``rng``: the shuffle generator's state; ``test_loss``, ``test_accuracy``: this epoch's;
- ``run_id``, ``world_size``, ``torchrun_launch``: the run, and the torchrun launch it was;
- ``args``: the run's settings, ``vars(args)`` with paths as strings.

Any dict of plain data saves and loads here; those are only p23's. The course's whole-model ``torch.save(model)`` files
are pickles: loading one runs whatever the file says, so it needs ``trust_pickle=True``.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common import disk
from common.cli import UserError, reason


class PickleRefused(UserError):
    """A whole pickled model, refused because ``trust_pickle`` is False."""


def save(obj: Any, path: Path, *, option: str | None = None) -> Path:
    """``torch.save(obj)`` to ``path``, atomically (see :func:`common.disk.atomic_write`)."""
    return disk.atomic_write(path, lambda f: torch.save(obj, f), option=option)


def load(path: Path, *, map_location: str | torch.device = "cpu",
         trust_pickle: bool = False) -> Any:
    """Load ``path`` with ``weights_only=True``; every failure is one :class:`UserError` line.

    ``trust_pickle=True`` (the scripts' ``--trust-pickle``) loads a whole pickled model, as the
    course does — only for a file the user made themselves.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a checkpoint: name a .pth file in it")
    if not path.is_file():
        raise UserError(f"no such checkpoint: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=not trust_pickle)
    except pickle.UnpicklingError as e:
        if "Unsupported global" in str(e):       # a class in the pickle: code would run
            raise PickleRefused(
                f"{path} holds a pickled Python object (a whole model saved with "
                "torch.save(model)), and unpickling can run any code in it. Load the "
                "state_dict format instead, or, if you made this file yourself, "
                "re-run with --trust-pickle") from None
        raise UserError(f"{path} is not a PyTorch checkpoint (cannot unpickle it)") from None
    except (AttributeError, ModuleNotFoundError) as e:
        if not trust_pickle:     # weights_only's unpickler can raise these from an allowed call
            raise UserError(f"{path} is not a PyTorch checkpoint ({e})") from None
        # A trusted whole-model pickle whose class can't be found: lesson 22's trap.
        raise UserError(f"{path} is a whole pickled model whose class cannot be found here "
                        f"({e}); import or define that class first, or save a state_dict") from None
    except Exception as e:
        # A file that is not a checkpoint, or a truncated one, fails in many ways inside
        # the unpickler or the zip reader (RuntimeError, EOFError, KeyError, struct.error...);
        # only the zip reader's own words (a RuntimeError) say something to a user: their
        # first sentence (the rest is miniz's advice that the file is probably corrupt).
        first = reason(e).split(". ")[0] if isinstance(e, RuntimeError) and str(e) else ""
        raise UserError(f"{path} is not a PyTorch checkpoint, or it is truncated"
                        + (f" ({first})" if first else "")) from None


# What each field of a training run's checkpoint (p23's gst_<epoch>.pth) holds. A file made
# some other way (by hand, by your own script) with a field of another kind is refused in one
# line, not met as a TypeError deep inside the resumed run or the prediction.
_NUMBER = (int, float)
RUN_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "model": ((dict,), "a state_dict"),
    "optimizer": ((dict,), "an optimizer's state_dict"),
    "epoch": ((int,), "a whole number, 0 or more"),
    "total_train_step": ((int,), "a whole number, 0 or more"),
    "total_test_step": ((int,), "a whole number, 0 or more"),
    "classes": ((list, tuple), "a list of class names"),
    "normalize": ((list, tuple, type(None)), "(mean, std), or None"),
    "rng": ((torch.Tensor,), "a generator's state (a uint8 tensor)"),
    "test_loss": ((*_NUMBER, type(None)), "a number"),
    "test_accuracy": ((*_NUMBER, type(None)), "a number"),
    "run_id": ((str, type(None)), "a run's name"),
    "data": ((dict, type(None)), "a description of the data"),
    "world_size": ((int,), "a whole number"),
    "args": ((dict, type(None)), "the run's settings"),
}


def need_run_fields(obj: dict, path: Path) -> None:
    """Every :data:`RUN_FIELDS` field that ``obj`` has holds what it should; else one line."""
    for key, (kinds, what) in RUN_FIELDS.items():
        if key not in obj:
            continue
        value = obj[key]
        ok = isinstance(value, kinds) and not isinstance(value, bool)    # True is an int too
        if ok and key == "classes":
            ok = all(isinstance(c, str) for c in value)
        elif ok and key == "normalize" and value is not None:
            ok = len(value) == 2 and all(isinstance(v, _NUMBER) and not isinstance(v, bool)
                                         for v in value) and value[1] > 0
        elif ok and key == "rng":
            ok = value.dtype == torch.uint8 and value.dim() == 1
        elif ok and key == "optimizer":
            ok = {"state", "param_groups"} <= value.keys()
        elif ok and key in ("epoch", "total_train_step", "total_test_step"):
            ok = value >= 0
        if not ok:
            shown = repr(value) if not isinstance(value, torch.Tensor) else (
                f"a {value.dtype} tensor of shape {list(value.shape)}")
            raise UserError(f"{path} is not a checkpoint of a training run as p23_train.py "
                            f"writes one: its {key!r} should be {what}, not "
                            f"{shown[:60]}{'...' if len(shown) > 60 else ''}")


def state_dict_of(obj: Any, path: Path) -> dict:
    """The model state_dict inside a loaded checkpoint: ours (``obj["model"]``) or a bare one."""
    def named(d):            # a state_dict's keys are names: "model.0.weight"
        return all(isinstance(k, str) for k in d)

    if isinstance(obj, dict) and isinstance(obj.get("model"), dict) and named(obj["model"]):
        return obj["model"]
    if isinstance(obj, dict) and obj and named(obj) \
            and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj               # the course's torch.save(model.state_dict(), ...)
    if isinstance(obj, nn.Module):
        return obj.state_dict()  # a trusted whole-model pickle
    raise UserError(f"{path} is not a model checkpoint (no state_dict in it)")


def load_weights(model: nn.Module, state_dict: dict, path: Path) -> nn.Module:
    """``model.load_state_dict(state_dict)``, strict; a mismatch is one line naming the file."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as e:
        # (no difference in names or shapes: PyTorch's words, less "Error(s) in loading
        # state_dict for GST:", cut short)
        detail = (mismatch(model.state_dict(), state_dict, type(model).__name__)
                  or " ".join(str(e).split()).split(": ", 1)[-1][:200])
        raise UserError(f"{path} is a checkpoint for a different architecture than "
                        f"{type(model).__name__} ({detail})") from None
    return model


def mismatch(want: dict, got: dict, name: str) -> str:
    """What differs between a model's state_dict (``want``) and a file's (``got``), in a few
    words: PyTorch's own message lists every key, hundreds for a big network."""
    def some(keys):
        return ", ".join(f'"{k}"' for k in keys[:2]) + (", ..." if len(keys) > 2 else "")

    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    resized = [k for k in want if k in got and hasattr(got[k], "shape")
               and hasattr(want[k], "shape") and tuple(got[k].shape) != tuple(want[k].shape)]
    said = []
    if missing:
        said.append(f"the file lacks {len(missing)} of {name}'s {len(want)} tensors: {some(missing)}")
    if extra:
        said.append(f"{len(extra)} of its {len(got)} are not {name}'s: {some(extra)}")
    if resized:
        k = resized[0]
        said.append(f"{len(resized)} differ in shape: {k} is {list(got[k].shape)} in the file, "
                    f"{list(want[k].shape)} in {name}")
    return "; ".join(said)
