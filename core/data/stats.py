"""Token-length statistics of a dataset, for the CLI's check and the app's histogram."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class LengthStats:
    count: int
    min: int
    max: int
    mean: float
    median: float
    p95: int
    over_max: int  # rows longer than max_length (they will be truncated)
    max_length: int

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"tokens per row: min {self.min}, median {self.median:.0f}, mean {self.mean:.1f}, "
            f"p95 {self.p95}, max {self.max}; {self.over_max} of {self.count} longer than "
            f"max_length {self.max_length} (truncated)"
        )


def length_stats(lengths: list[int], max_length: int) -> LengthStats:
    if not lengths:
        return LengthStats(0, 0, 0, 0.0, 0.0, 0, 0, max_length)
    ordered = sorted(lengths)
    n = len(ordered)
    mid = n // 2
    median = ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    p95 = ordered[min(n - 1, int(round(0.95 * (n - 1))))]
    return LengthStats(
        count=n,
        min=ordered[0],
        max=ordered[-1],
        mean=sum(ordered) / n,
        median=float(median),
        p95=p95,
        over_max=sum(1 for x in ordered if x > max_length),
        max_length=max_length,
    )
