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
    over_max: int  # rows longer than max_length (cut, split or left out: data.too_long)
    max_length: int
    too_long: str = "cut"  # what happens to them (core.data.long_rows)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"tokens per row: min {self.min}, median {self.median:.0f}, mean {self.mean:.1f}, "
            f"p95 {self.p95}, max {self.max}; {self.over_max} of {self.count} longer than "
            f"max_length {self.max_length}"
            + (f": {too_long_fate(self.too_long, self.max_length)}" if self.over_max else "")
        )


def too_long_fate(too_long: str, max_length: int) -> str:
    """What training does with rows longer than `max_length`, in words, for the check and the app."""
    return {
        "cut": f"they will be cut at {max_length:,} tokens (the rest is not learned)",
        "split": f"they will be split into pieces of at most {max_length:,} tokens",
        "drop": "they will be left out",
    }.get(too_long, f"they will be cut at {max_length:,} tokens")


def length_stats(lengths: list[int], max_length: int, too_long: str = "cut") -> LengthStats:
    if not lengths:
        return LengthStats(0, 0, 0, 0.0, 0.0, 0, 0, max_length, too_long)
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
        too_long=too_long,
    )
