"""common.step: the warm-up leaves no trace, and a CUDA graph of the step trains as the eager
loop does. The oracle is the course's loop written out here, on a copy of the same weights."""
from __future__ import annotations

import copy
import functools

import pytest
import torch
from torch import nn

from common import step as common_step
from common.data import InMemoryLoader
from common.model import GST

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def course_step(gst, loss_fn, optimizer, imgs, targets, amp=False):
    with torch.autocast(imgs.device.type, dtype=torch.bfloat16, enabled=amp,
                        cache_enabled=False):
        loss = loss_fn(gst(imgs), targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def training_setup(device, momentum=0.9, n=14 * 64 + 16, memory_format=torch.contiguous_format):
    """GST + SGD on ``device``, and a shuffled loader of ``n`` random images (a partial batch)."""
    torch.manual_seed(0)
    gst = GST().to(device, memory_format=memory_format)
    optimizer = torch.optim.SGD(gst.parameters(), lr=0.05, momentum=momentum)
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    targets = torch.randint(0, 10, (n,), generator=g)
    loader = InMemoryLoader(images, targets, 64, shuffle=True, device=device,
                            channels_last=memory_format == torch.channels_last,
                            generator=torch.Generator().manual_seed(2))
    return gst, optimizer, loader


def state_of(gst, optimizer):
    return ([p.detach().clone() for p in gst.parameters()],
            [optimizer.state[p].get("momentum_buffer") for p in gst.parameters()])


def trained(gst, optimizer, loader, step, epochs=2, amp=False):
    """Train ``epochs`` over ``loader`` with ``step``, or with :func:`course_step` if it is None;
    returns the losses of every step."""
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for _ in range(epochs):
        for imgs, targets in loader:
            if step is None:
                losses.append(course_step(gst, loss_fn, optimizer, imgs, targets, amp).item())
            else:
                losses.append(step(imgs, targets).item())
    return losses


def test_sample_batches_are_one_of_each_size_and_draw_no_shuffle(tmp_path):
    _, _, loader = training_setup("cpu", n=100)
    state = loader.generator.get_state()
    (full, full_t), (last, last_t) = loader.sample_batches()
    assert full.shape == (64, 3, 32, 32) and last.shape == (100 - 64, 3, 32, 32)
    assert full.dtype == torch.float32 and full_t.tolist() == loader.targets[:64].tolist()
    assert torch.equal(full, loader.images[:64].float() / 255)
    assert torch.equal(loader.generator.get_state(), state)     # the shuffle order untouched
    _, _, even = training_setup("cpu", n=128)
    assert [b[0].shape[0] for b in even.sample_batches()] == [64]
    _, _, small = training_setup("cpu", n=10)
    assert [b[0].shape[0] for b in small.sample_batches()] == [10]


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("already_trained", [False, True])
def test_prepare_puts_weights_and_momentum_back_exactly(momentum, already_trained):
    gst, optimizer, loader = training_setup("cpu", momentum=momentum, n=100)
    step_fn = functools.partial(course_step, gst, nn.CrossEntropyLoss(), optimizer)
    if already_trained:                      # a resumed run: momentum buffers exist already
        trained(gst, optimizer, loader, None, epochs=1)
    params, buffers = state_of(gst, optimizer)
    step = common_step.prepare(step_fn, gst, optimizer, loader.sample_batches())
    assert step is step_fn                   # eager: the same function, warmed up
    for p, before in zip(gst.parameters(), params):
        assert torch.equal(p, before)
    for p, before in zip(gst.parameters(), buffers):
        after = optimizer.state[p].get("momentum_buffer")
        if momentum == 0:
            assert after is None and before is None
        elif already_trained:
            assert torch.equal(after, before)
        else:                                # made by the warm-up: zero, SGD's first step's start
            assert before is None and torch.count_nonzero(after) == 0


def test_a_prepared_run_equals_the_course_loop_bit_for_bit():
    gst, optimizer, loader = training_setup("cpu", n=4 * 64 + 16)
    oracle_gst, oracle_opt = copy.deepcopy(gst), None
    oracle_opt = torch.optim.SGD(oracle_gst.parameters(), lr=0.05, momentum=0.9)
    oracle_loader = copy.deepcopy(loader)

    step_fn = functools.partial(course_step, gst, nn.CrossEntropyLoss(), optimizer)
    step = common_step.prepare(step_fn, gst, optimizer, loader.sample_batches())
    losses = trained(gst, optimizer, loader, step)
    oracle_losses = trained(oracle_gst, oracle_opt, oracle_loader, None)
    assert len(losses) == 10 and losses == oracle_losses
    for p, q in zip(gst.parameters(), oracle_gst.parameters()):
        assert torch.equal(p, q)


def test_an_unknown_new_optimizer_state_is_refused_not_silently_kept():
    gst, _, loader = training_setup("cpu", n=64)
    adam = torch.optim.Adam(gst.parameters())
    step_fn = functools.partial(course_step, gst, nn.CrossEntropyLoss(), adam)
    with pytest.raises(ValueError, match="cannot undo the warm-up's new optimizer state"):
        common_step.prepare(step_fn, gst, adam, loader.sample_batches())


# ---- on a CUDA GPU (skipped without one) -------------------------------------------------

@cuda
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("amp, rtol", [(False, 1e-4), (True, 1e-2)])
def test_cuda_graph_trains_as_the_eager_loop(memory_format, amp, rtol, monkeypatch):
    """30 graphed steps and 30 eager ones (2 epochs of 14 full batches and a partial one),
    momentum 0.9, from the same weights on the same batches: the same weights at the end."""
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)   # no atomics' noise
    gst, optimizer, loader = training_setup("cuda", memory_format=memory_format)
    oracle_gst = copy.deepcopy(gst)
    oracle_opt = torch.optim.SGD(oracle_gst.parameters(), lr=0.05, momentum=0.9)
    oracle_loader = copy.deepcopy(loader)
    skipped_gst = copy.deepcopy(gst)      # the same, never trained on a partial batch
    skipped_opt = torch.optim.SGD(skipped_gst.parameters(), lr=0.05, momentum=0.9)
    skipped_loader = copy.deepcopy(loader)
    full_batches = [(i, t) for _ in range(2) for i, t in skipped_loader if len(t) == 64]

    step_fn = functools.partial(course_step, gst, nn.CrossEntropyLoss(), optimizer, amp=amp)
    step = common_step.prepare(step_fn, gst, optimizer, loader.sample_batches(),
                               cuda_graph=True)
    assert isinstance(step, common_step.CUDAGraphStep)
    replays = []
    real_replay = step.graph.replay
    step.graph = type("Counting", (), {"replay": lambda self: replays.append(1) or real_replay()})()
    losses = trained(gst, optimizer, loader, step)
    assert len(replays) == 28              # every full batch by the graph, the 2 partial eagerly
    oracle_losses = trained(oracle_gst, oracle_opt, oracle_loader, None, amp=amp)
    assert len(losses) == 30
    assert losses == pytest.approx(oracle_losses, rel=rtol)
    for p, q in zip(gst.parameters(), oracle_gst.parameters()):
        torch.testing.assert_close(p, q, rtol=rtol, atol=rtol * 1e-2)
    # the partial batches were trained on: without them the weights end far further away
    for imgs, targets in full_batches:
        course_step(skipped_gst, nn.CrossEntropyLoss(), skipped_opt, imgs, targets, amp)
    assert len(full_batches) == 28

    def distance(model):
        return max((p - q).abs().max().item() for p, q in
                   zip(gst.parameters(), model.parameters()))
    assert distance(skipped_gst) > 10 * distance(oracle_gst)


@cuda
def test_cuda_graph_step_makes_no_host_sync():
    gst, optimizer, loader = training_setup("cuda")
    step_fn = functools.partial(course_step, gst, nn.CrossEntropyLoss(), optimizer)
    step = common_step.prepare(step_fn, gst, optimizer, loader.sample_batches(),
                               cuda_graph=True)
    batches = [b for b in loader if len(b[1]) == 64]
    torch.cuda.set_sync_debug_mode("error")     # any synchronising call raises
    try:
        for imgs, targets in batches:
            assert step(imgs, targets) is step.static_loss     # replayed, not run eagerly
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
