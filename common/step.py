"""The training step, made ready before the first epoch: warmed up, and on CUDA (when asked)
recorded as one CUDA graph.

Why a graph: on a GPU, GST's forward, loss, backward and SGD step are dozens of small kernels
that each take the GPU a few microseconds and Python longer to launch, so the eager loop runs
at the speed of Python, not of the GPU. A CUDA graph records the kernels once and replays them
all with one launch per step. PyTorch's recipe ("whole-network capture", in the CUDA semantics
notes: https://docs.pytorch.org/docs/stable/notes/cuda.html#whole-network-capture) is what
:class:`CUDAGraphStep` follows:

- warm-up iterations on a side stream first (cuDNN picks its kernels, the allocator settles);
- the gradients set to ``None`` before capture, so backward allocates them inside the graph
  and each replay writes them afresh (no zeroing between replays);
- static input tensors: each step copies its batch into them, on the GPU, with no host
  synchronisation, and replays; the loss it returns is the graph's own output tensor, which
  the next replay overwrites (read it before the next step);
- a batch of another shape (an epoch's last, partial batch) runs eagerly, on the same
  parameters, gradients and optimizer state, so every image is still trained on.

:func:`prepare` runs the warm-up (and the capture) on real batches and then puts the model's
weights and the optimizer's state back as they were, in place (a graph holds their
addresses): training starts from exactly the state it would have started from without it, and
a first epoch is no slower than the others.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import Tensor, nn

# step(imgs, targets) -> loss: forward, loss, zero_grad, backward, optimizer step.
Step = Callable[[Tensor, Tensor], Tensor]

WARMUP_STEPS = 3   # PyTorch's recipe warms up for a few iterations before capture


class CUDAGraphStep:
    """``step_fn`` recorded as one CUDA graph for batches shaped like ``imgs, targets``.

    Calling it copies ``imgs, targets`` into the graph's static inputs and replays the graph;
    a batch of another shape is passed to ``step_fn`` itself, eagerly. The warm-up steps
    train on ``imgs, targets`` (the capture only records): :func:`prepare` undoes that.

    What the step reads from Python is recorded as it was at capture: SGD's ``lr`` and
    ``momentum`` are constants of the graph. Changing them afterwards (a learning-rate
    schedule) would need the step captured again, or a tensor ``lr``; p23 has no schedule.
    """

    def __init__(self, step_fn: Step, imgs: Tensor, targets: Tensor,
                 warmup_steps: int = WARMUP_STEPS):
        self.step_fn = step_fn
        self.static_imgs, self.static_targets = imgs.clone(), targets.clone()  # strides kept
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup_steps):
                step_fn(self.static_imgs, self.static_targets)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        # step_fn's optimizer.zero_grad() sets the gradients to None inside the capture:
        # backward then allocates them in the graph's memory, and each replay rewrites them.
        with torch.cuda.graph(self.graph):
            self.static_loss = step_fn(self.static_imgs, self.static_targets)

    def __call__(self, imgs: Tensor, targets: Tensor) -> Tensor:
        if imgs.shape != self.static_imgs.shape:
            return self.step_fn(imgs, targets)      # the last, partial batch: eagerly
        self.static_imgs.copy_(imgs)                # device to device, no host sync
        self.static_targets.copy_(targets)
        self.graph.replay()
        return self.static_loss


def prepare(step_fn: Step, model: nn.Module, optimizer: torch.optim.Optimizer,
            batches: Iterable[tuple[Tensor, Tensor]], *, cuda_graph: bool = False) -> Step:
    """``step_fn``, warmed up on ``batches`` (one of each shape an epoch has) and, with
    ``cuda_graph``, recorded as a :class:`CUDAGraphStep` on the first of them.

    Afterwards the model's parameters and buffers and the optimizer's state hold exactly what
    they held before (restored in place), so the run trains as if nothing had happened.
    ``cuda_graph`` needs the model on a CUDA device.
    """
    batches = list(batches)
    saved = _snapshot(model, optimizer)
    model.train()
    step = step_fn
    if cuda_graph:
        step = CUDAGraphStep(step_fn, *batches[0])
    for imgs, targets in batches:      # kernel selection for each batch shape; a first replay
        step(imgs, targets)
    _restore(model, optimizer, saved)
    return step


def _snapshot(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    return {
        "model": [t.detach().clone() for t in _model_tensors(model)],
        "optimizer": {id(p): {k: v.clone() if isinstance(v, Tensor) else v
                              for k, v in state.items()}
                      for p, state in optimizer.state.items()},
    }


def _restore(model: nn.Module, optimizer: torch.optim.Optimizer, saved: dict) -> None:
    with torch.no_grad():
        for tensor, value in zip(_model_tensors(model), saved["model"]):
            tensor.copy_(value)
        for p, state in optimizer.state.items():
            before = saved["optimizer"].get(id(p), {})
            for key, value in state.items():
                if key in before and not isinstance(value, Tensor):
                    state[key] = before[key]
                elif key in before:
                    value.copy_(before[key])
                elif key == "momentum_buffer" and _no_dampening(optimizer, p):
                    # Made by the warm-up: SGD's first step sets the buffer to the gradient;
                    # from zero, momentum * 0 + gradient gives exactly that (dampening 0).
                    value.zero_()
                else:
                    raise ValueError(f"cannot undo the warm-up's new optimizer state {key!r}")


def _no_dampening(optimizer: torch.optim.Optimizer, p: Tensor) -> bool:
    return any(g.get("dampening", 0) == 0 for g in optimizer.param_groups
               if any(q is p for q in g["params"]))


def _model_tensors(model: nn.Module) -> list[Tensor]:
    return [*model.parameters(), *model.buffers()]
