"""One of several processes launched by ``torchrun``: who it is, its process group, and the
few things training shares between processes. Without torchrun none of it touches
``torch.distributed``: :func:`world` says one process, and every helper returns its input.

torchrun (https://docs.pytorch.org/docs/stable/elastic/run.html) starts the processes and
tells each who it is in its environment: ``RANK`` of ``WORLD_SIZE``, ``LOCAL_RANK`` of
``LOCAL_WORLD_SIZE`` on this machine, ``TORCHELASTIC_RUN_ID`` (the launch: the same in every
process and across torchrun's restarts of them) and ``TORCHELASTIC_RESTART_COUNT``.
``DistributedDataParallel`` keeps the copies of the model equal: it sends rank 0's weights to
every process when it wraps the model, and averages the gradients in every backward pass.
"""
from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from common.cli import UserError, reason

# How long a process waits at a collective (a step's gradient all-reduce, the test pass's sum)
# for the others before it gives up with an error: what ends a run whose peer hangs or drops
# off the network. A peer that dies is noticed sooner: torchrun stops the others at once.
TIMEOUT_S = 120


@dataclass(frozen=True)
class World:
    """This process's place in a torchrun launch; the defaults are a plain ``python`` run."""

    launched: bool = False           # started by torchrun, even as one process: DDP
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    launch_id: str | None = None     # TORCHELASTIC_RUN_ID
    restart: int = 0                 # how many times torchrun has restarted the processes

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that prints, logs and saves."""
        return self.rank == 0

    @property
    def machines(self) -> int:
        return self.world_size // self.local_world_size


def world() -> World:
    """This process's :class:`World`, from torchrun's environment variables."""
    env = os.environ
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return World()
    return World(launched=True, rank=int(env["RANK"]), world_size=int(env["WORLD_SIZE"]),
                 local_rank=int(env.get("LOCAL_RANK", 0)),
                 local_world_size=int(env.get("LOCAL_WORLD_SIZE", env["WORLD_SIZE"])),
                 launch_id=env.get("TORCHELASTIC_RUN_ID"),
                 restart=int(env.get("TORCHELASTIC_RESTART_COUNT", 0)))


def device_for(device: torch.device, w: World) -> torch.device:
    """``device`` for this process: under torchrun, an accelerator's ``LOCAL_RANK``-th one."""
    if not w.launched or device.type == "cpu":
        return device
    count = torch.accelerator.device_count()
    if w.local_world_size > count:
        raise UserError(f"torchrun starts {w.local_world_size} processes on this machine, but "
                        f"it has {count} {device.type} device(s): one process a device, so "
                        f"pass --nproc-per-node {count} (or --device cpu)")
    torch.accelerator.set_device_index(w.local_rank)
    return torch.device(device.type, w.local_rank)


@contextlib.contextmanager
def process_group(w: World, device: torch.device, timeout_s: float = TIMEOUT_S):
    """The launch's process group, for the ``with`` block (nothing without torchrun).

    The backend is the one made for the device: NCCL for CUDA GPUs, gloo for the CPU.
    """
    if not w.launched:
        yield
        return
    try:
        backend = dist.get_default_backend_for_device(device)
    except (RuntimeError, ValueError):
        raise UserError(f"torch.distributed has no backend for {device.type}: under torchrun "
                        "pass --device cpu (or cuda), or run without torchrun") from None
    # torchrun keeps one store for the launch, and the keys that the processes it restarted
    # wrote stay in it: a new process could read a dead one's address and never connect
    # (pytorch/pytorch#135712). A prefix per restart keeps each start's keys apart.
    timeout = timedelta(seconds=timeout_s)
    try:
        store, rank, world_size = next(dist.rendezvous("env://", timeout=timeout))
        dist.init_process_group(backend, store=dist.PrefixStore(f"restart_{w.restart}/", store),
                                rank=rank, world_size=world_size, timeout=timeout,
                                device_id=None if device.type == "cpu" else device)
    except dist.DistError as e:
        raise UserError(f"cannot join torchrun's other processes within --dist-timeout "
                        f"{timeout_s:g} s: {peer_failure(e)}") from None
    try:
        yield
    except KeyboardInterrupt as e:
        # Ctrl-C reaches every process of the launch. Freeing this one's DDP state while a
        # gradient all-reduce is still waiting on a peer can block in C++ (seen with torch
        # 2.13: up to torchrun's 30 s, then it kills the process): what was kept is already
        # saved, so cli.entrypoint ends the process at once after its line.
        e.exit_at_once = True
        raise
    else:
        # Leave together: with torch 2.6's gloo, a rank 0 that reached destroy_process_group
        # after its peer had gone hung there for good, its run trained and saved (seen in 3
        # of 10 restarted launches under load, py-spy in this line).
        dist.barrier()
    finally:
        dist.destroy_process_group()


@contextlib.contextmanager
def rank0_prints(w: World):
    """Let rank 0 alone print to stdout, so the course's lines appear once (errors on stderr
    still come from any process)."""
    if w.is_main:
        yield
        return
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


def wrap(model: nn.Module, w: World, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel under torchrun (it starts from rank 0's weights);
    the model itself otherwise."""
    if not w.launched:
        return model
    return DistributedDataParallel(model, device_ids=None if device.type == "cpu"
                                   else [device.index])


def peer_failure(e: BaseException) -> str | None:
    """``e`` in a few words if it is a collective that failed (another process died, hung or
    left), else None. gloo's messages start with its source file: that part is dropped."""
    if isinstance(e, dist.DistError) or (
            isinstance(e, RuntimeError) and any(word in str(e) for word in ("gloo", "NCCL"))):
        words = re.sub(r"^\[[^\]]*\] ", "", reason(e))
        return words.split(". ")[0]            # gloo adds advice, and "GLHF!", after a full stop
    return None


def _active() -> bool:
    return dist.is_available() and dist.is_initialized()


def _device() -> torch.device:
    """Where the backend's tensors live: the CPU for gloo, this process's GPU for NCCL."""
    if dist.get_backend() == "gloo":
        return torch.device("cpu")
    return torch.device(torch.accelerator.current_accelerator().type,
                        torch.accelerator.current_device_index())


def mean(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor``'s mean over the processes (a step's loss: over the whole batch of all)."""
    if not _active():
        return tensor
    total = tensor.detach().clone()
    dist.all_reduce(total)               # a sum: gloo has no average
    return total / dist.get_world_size()


def sum_all(values) -> list[float]:
    """Each of ``values`` (numbers or one-element tensors) summed over the processes."""
    values = [float(v) for v in values]
    if not _active():
        return values
    total = torch.tensor(values, dtype=torch.float64, device=_device())
    dist.all_reduce(total)
    return total.tolist()


def sum_counts(counts: torch.Tensor) -> torch.Tensor:
    """``counts`` (an integer tensor) summed element by element over the processes, on the CPU."""
    if not _active():
        return counts.cpu()
    total = counts.to(_device(), copy=True)
    dist.all_reduce(total)
    return total.cpu()


def gather(values) -> list[list[int]]:
    """Every process's ``values`` (whole numbers, as many in each), in rank order."""
    if not _active():
        return [list(values)]
    mine = torch.tensor(list(values), dtype=torch.int64, device=_device())
    every = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(every, mine)
    return [t.tolist() for t in every]


def share_generator(generator: torch.Generator) -> None:
    """Give every process rank 0's ``generator`` state, so all draw the same shuffles."""
    if not _active():
        return
    state = generator.get_state().to(_device())
    dist.broadcast(state, src=0)
    generator.set_state(state.cpu())


def launcher(w: World) -> list[str] | None:
    """The torchrun words that start this launch again, for a printed command (None: python)."""
    if not w.launched:
        return None
    if w.machines == 1:
        return ["torchrun", "--standalone", f"--nproc-per-node={w.local_world_size}"]
    return ["torchrun", f"--nnodes={w.machines}", f"--nproc-per-node={w.local_world_size}",
            "--rdzv-backend=c10d", "--rdzv-endpoint=HOST:PORT"]     # yours, on every machine
