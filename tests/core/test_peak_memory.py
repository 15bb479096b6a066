"""Step events report the peak memory of their interval, not what is left between steps: the reporting
logic with an injected memory source (this machine has no CUDA), through the Trainer callback."""

from types import SimpleNamespace

import pytest

from tunesmith.core.events import StepMetrics, event_from_dict
from tunesmith.core.hardware import GIB, PeakMemory
from tunesmith.core.training.callbacks import EventBridge


class FakeAllocator:
    """A MemorySource with CUDA's semantics: the peaks follow every allocation until reset."""

    def __init__(self, total_gib: float = 24.0) -> None:
        self.allocated = self.reserved = 0
        self.peak_allocated = self.peak_reserved = 0
        self._total = int(total_gib * GIB)
        self.samples = 0

    def alloc(self, gib: float) -> None:
        self.allocated += int(gib * GIB)
        self.reserved = max(self.reserved, self.allocated)  # the cache keeps what it reserved
        self.peak_allocated = max(self.peak_allocated, self.allocated)
        self.peak_reserved = max(self.peak_reserved, self.reserved)

    def free(self, gib: float) -> None:
        self.allocated -= int(gib * GIB)

    def peak(self) -> tuple[int, int]:
        return self.peak_allocated, self.peak_reserved

    def reset_peak(self) -> None:
        self.peak_allocated, self.peak_reserved = self.allocated, self.reserved

    def sample(self) -> None:
        self.samples += 1

    def total(self) -> int:
        return self._total


def step(source: FakeAllocator, transient_gib: float) -> None:
    """A training step: activations and logits come and go; 5 GiB of weights stay."""
    source.alloc(transient_gib)
    source.free(transient_gib)


def test_each_report_is_the_peak_of_its_interval():
    source = FakeAllocator()
    source.alloc(5.0)  # the model
    peaks = PeakMemory(source)
    source.alloc(3.0)
    source.free(3.0)  # loading's transient is before training: not a step's
    peaks.start()
    step(source, 8.0)
    first = peaks.report()
    assert first.allocated_gb == pytest.approx(13.0) and first.total_gb == pytest.approx(24.0)
    step(source, 2.0)
    step(source, 1.0)
    second = peaks.report()  # the counter was reset: the interval's own peak, not the run's
    assert second.allocated_gb == pytest.approx(7.0)
    assert second.reserved_gb == pytest.approx(13.0)  # the cache still holds the first step's
    third = peaks.report()  # nothing happened: the memory still in use
    assert third.allocated_gb == pytest.approx(5.0)


def trainer_state(global_step: int) -> SimpleNamespace:
    return SimpleNamespace(global_step=global_step, max_steps=10, epoch=0.1 * global_step)


def test_step_events_carry_the_peak_since_the_last_event():
    source, events = FakeAllocator(), []
    source.alloc(5.0)
    bridge = EventBridge(events.append, memory=source)
    control = SimpleNamespace(should_save=False, should_training_stop=False)
    bridge.on_train_begin(None, trainer_state(0), control)
    for number, transient in enumerate([6.0, 2.0, 1.0], start=1):
        step(source, transient)
        bridge.on_step_end(None, trainer_state(number), control)
        if number != 2:  # logging_steps: step 2 is not logged, its peak goes to step 3's event
            bridge.on_log(None, trainer_state(number), control, logs={"loss": 1.0, "learning_rate": 1e-4})
    assert [e.step for e in events] == [1, 3]
    assert [e.peak_allocated_gb for e in events] == pytest.approx([11.0, 7.0])
    assert [e.peak_reserved_gb for e in events] == pytest.approx([11.0, 11.0])
    assert events[0].memory_total_gb == pytest.approx(24.0)
    assert source.samples == 3  # each step's end (a CPU source notes its RSS there)


def test_cpu_source_reports_the_highest_sample():
    from tunesmith.core.hardware import ProcessMemory

    source = ProcessMemory()
    rss = iter([100, 300, 200, 150, 120])
    source._rss = lambda: next(rss) * 2**20
    peaks = PeakMemory(source)
    peaks.start()  # 100
    peaks.sample()  # 300
    peaks.sample()  # 200
    report = peaks.report()  # a last sample (150), then the next interval starts (120)
    assert report.allocated_gb * 1024 == pytest.approx(300) and report.reserved_gb == report.allocated_gb


def test_old_metrics_lines_are_read_into_the_peak_fields():
    line = {
        "event": "step", "step": 3, "total_steps": 8, "epoch": 0.5, "loss": 1.2, "learning_rate": 1e-4,
        "grad_norm": None, "tokens_per_second": 900.0, "memory_allocated_gb": 5.6,
        "memory_reserved_gb": 6.0, "memory_total_gb": 24.0, "eta_seconds": 12.0, "extra": {},
    }  # fmt: skip
    event = event_from_dict(line)
    assert isinstance(event, StepMetrics) and event.peak_allocated_gb == 5.6 and event.peak_reserved_gb == 6.0
    assert event_from_dict(event.to_dict()) == event
