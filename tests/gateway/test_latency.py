"""LatencyWindow: binned percentiles agree with exact ones and follow the recent past."""

from __future__ import annotations

import numpy as np
import pytest

from stratvector.gateway.latency import LatencyWindow


def test_empty_window_reports_nothing() -> None:
    w = LatencyWindow()
    assert w.quantile(50) is None and w.ms(99) is None and len(w) == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_percentiles_within_one_percent_of_the_exact_nearest_rank(seed: int) -> None:
    rng = np.random.default_rng(seed)
    samples = rng.lognormal(mean=np.log(2e-3), sigma=1.2, size=5_000)  # around 2 ms
    w = LatencyWindow(window=10_000)
    for x in samples:
        w.add(float(x))
    for q in (1, 25, 50, 90, 99, 99.9, 100):
        exact = float(np.percentile(samples, q, method="inverted_cdf"))
        assert w.quantile(q) == pytest.approx(exact, rel=0.0101), q
    assert w.quantile(100) == pytest.approx(samples.max(), rel=1e-12)
    assert len(w) == 5_000 and w.total == 5_000


def test_percentiles_follow_the_newest_samples() -> None:
    w = LatencyWindow(window=100)
    for _ in range(300):
        w.add(1.0)  # an old slow period
    for _ in range(200):
        w.add(1e-3)  # two full windows of fast samples since
    assert w.quantile(99) == pytest.approx(1e-3, rel=0.0101)
    assert len(w) == 200 and w.total == 500 and w.max == 1.0


def test_between_one_and_two_windows_are_kept() -> None:
    w = LatencyWindow(window=100)
    for _ in range(100):
        w.add(1.0)
    for _ in range(50):
        w.add(1e-3)
    # 100 slow + 50 fast still held: the median is slow
    assert len(w) == 150
    assert w.quantile(50) == pytest.approx(1.0, rel=0.0101)


def test_out_of_range_samples_are_clamped_not_lost() -> None:
    w = LatencyWindow()
    for x in (0.0, -1.0, float("nan"), 1e-9, 5e4):
        w.add(x)
    assert len(w) == 5
    assert w.quantile(100) == 5e4  # the largest sample, reported exactly
    assert w.quantile(1) is not None and w.quantile(1) < 1e-6


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="window"):
        LatencyWindow(window=0)
    with pytest.raises(ValueError, match="percentile"):
        LatencyWindow().quantile(101)
