"""The pinned pool (issue 16): host blocks of the size asked for (2 MiB granularity, not a power of two),
the smallest free block that fits serves a request, its surplus counted in the host budget while used,
free blocks let go (unregistered first) when registering a new one would pass the budget, and without
CUDA the blocks stay pageable with the reason logged once.  On this machine the registration is either
the real one (no CUDA: it says why) or a stand-in that records what it was asked to page-lock; the GPU
test (test_pinned_pool_gpu.py) registers for real."""

import gc
import logging

import pytest
import torch

from tunesmith.kernels.memory import pinned_pool
from tunesmith.kernels.memory.host_budget import GRANULE, HostBudget, pinned_bytes
from tunesmith.kernels.memory.pinned_pool import PAGE, PinnedPool, register_host

MIB = 2**20


class Registrations:
    """A registration step that page-locks nothing but notes the spans it was given and their undo."""

    def __init__(self):
        self.registered, self.unregistered = [], []

    def __call__(self, span):
        self.registered.append(span.nbytes)
        address = span.data_ptr()
        return lambda: self.unregistered.append((address, span.nbytes))


def take(pool, budget, nbytes):
    """As kernels.memory.offload does: the request's share counted first, then the block."""
    assert budget.take(pinned_bytes(nbytes))
    return pool.take(nbytes, budget)


def give(pool, budget, view):
    pool.give(view)
    budget.give(pinned_bytes(view.numel()))


def test_exact_blocks_best_fit_and_reuse():
    reg, budget = Registrations(), HostBudget(100 * MIB)
    pool = PinnedPool(reg)
    a = take(pool, budget, 5 * MIB + 1)  # 6 MiB: a multiple of 2 MiB, not 8
    assert a.numel() == 5 * MIB + 1 and a.dtype == torch.uint8 and a.data_ptr() % PAGE == 0
    assert reg.registered == [6 * MIB] and pool.held == 6 * MIB and budget.used == 6 * MIB
    a.fill_(7)  # real memory
    assert int(a[-1]) == 7
    give(pool, budget, a)
    assert pool.free_bytes == 6 * MIB and budget.used == 0 and pool.in_use == 0

    # a shorter request reuses the block (no new registration); its 2 MiB surplus is counted while used
    b = take(pool, budget, 3 * MIB)
    assert b.data_ptr() == a.data_ptr() and reg.registered == [6 * MIB]
    assert budget.used == 6 * MIB and pool.free_bytes == 0
    c = take(pool, budget, 3 * MIB + 5)  # none free: a new 4 MiB block
    assert reg.registered == [6 * MIB, 4 * MIB] and budget.used == 10 * MIB
    give(pool, budget, b)
    give(pool, budget, c)
    assert budget.used == 0 and pool.held == pool.free_bytes == 10 * MIB

    # best fit: the 4 MiB block serves 3.5 MiB, not the 6 MiB one
    d = take(pool, budget, 3 * MIB + MIB // 2)
    assert d.data_ptr() == c.data_ptr() and budget.used == 4 * MIB
    give(pool, budget, d)
    pool.close()
    assert pool.held == 0 and sorted(n for _, n in reg.unregistered) == [4 * MIB, 6 * MIB]


def test_trims_free_blocks_rather_than_pass_the_budget():
    reg, budget = Registrations(), HostBudget(20 * MIB)
    pool = PinnedPool(reg)
    x, y = take(pool, budget, 8 * MIB), take(pool, budget, 8 * MIB)
    give(pool, budget, x)
    give(pool, budget, y)
    assert pool.free_bytes == 16 * MIB and budget.used == 0
    # 12 MiB: no free block fits; 12 counted + 16 free would pass 20, so one 8 MiB block goes first
    z = take(pool, budget, 12 * MIB)
    assert reg.registered == [8 * MIB, 8 * MIB, 12 * MIB] and [n for _, n in reg.unregistered] == [8 * MIB]
    assert pool.held == 20 * MIB <= budget.limit
    give(pool, budget, z)

    # a block whose surplus the budget cannot take is passed over: with 14 MiB held elsewhere (the
    # embedding table), 2 MiB from the free 8 or 12 MiB block would count 22 or 26 MiB
    assert budget.take(14 * MIB)
    small = take(pool, budget, 2 * MIB)
    assert reg.registered[-1] == 2 * MIB and budget.used == 16 * MIB
    # and registering it let both free blocks go: 16 counted and 20 free would pass 20
    assert [n for _, n in reg.unregistered] == [8 * MIB, 8 * MIB, 12 * MIB] and pool.held == 2 * MIB
    give(pool, budget, small)
    assert pool.trim(budget) == 0  # 14 counted, 2 free: within 20
    assert pool.trim(budget, need=5 * MIB) == 2 * MIB and pool.held == 0


def test_without_cuda_blocks_stay_pageable_and_say_why(caplog, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("this machine registers for real (test_pinned_pool_gpu.py)")
    assert register_host(torch.empty(PAGE, dtype=torch.uint8)) == "no CUDA device"
    monkeypatch.setattr(pinned_pool, "_LOGGED", set())
    budget, pool = HostBudget(GRANULE * 4), PinnedPool()
    with caplog.at_level(logging.WARNING, logger=pinned_pool.__name__):
        blocks = [take(pool, budget, n) for n in (MIB, 3 * MIB, 100)]
    assert [b.numel() for b in blocks] == [MIB, 3 * MIB, 100]
    assert not any(b.is_pinned() for b in blocks)
    # counted as pinned all the same: the arithmetic is the one the GPU runs
    assert pool.held == budget.used == MIB + 4 * MIB + 4096
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "no CUDA device" in warnings[0] and "pageable" in warnings[0]


def test_blocks_given_back_inside_a_take_are_filed_later_and_a_dropped_pool_unregisters():
    reg, budget = Registrations(), HostBudget(64 * MIB)
    pool = PinnedPool(reg)
    a = take(pool, budget, 4 * MIB)
    with pool._lock:  # as when a dropped graph's stash is finalized while this thread is in `take`
        give(pool, budget, a)
    assert pool.free_bytes == 0  # queued, not filed under the holder's feet
    b = take(pool, budget, 4 * MIB)
    assert b.data_ptr() == a.data_ptr() and len(reg.registered) == 1
    give(pool, budget, b)
    assert pool.free_bytes == 4 * MIB
    del pool, a, b
    gc.collect()
    assert [n for _, n in reg.unregistered] == [4 * MIB]
