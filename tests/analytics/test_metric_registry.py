"""Metric lookup by name for the optimizer."""

from __future__ import annotations

import pandas as pd
import pytest

from stratvector import analytics as A
from stratvector.errors import StratVectorError


def test_registry_covers_every_returns_only_summary_key() -> None:
    assert A.metric_names() == tuple(k for k in A.SUMMARY_KEYS if k not in ("alpha", "beta"))


@pytest.mark.parametrize("ppy", [252, 12])
def test_each_metric_equals_its_summary_value(ppy: int, real_returns: pd.Series) -> None:
    s = A.summary(real_returns, periods_per_year=ppy)
    for name in A.metric_names():
        metric = A.get_metric(name)
        assert metric.name == name
        assert metric(real_returns, ppy) == pytest.approx(s[name], rel=1e-12, nan_ok=True), name


def test_directions_for_the_optimizer() -> None:
    assert A.get_metric("sharpe").higher_is_better is True
    assert A.get_metric("max_drawdown").higher_is_better is True  # negative: closer to 0
    assert A.get_metric("cvar_95").higher_is_better is False  # positive loss
    assert A.get_metric("max_drawdown_duration").higher_is_better is False
    assert A.get_metric("n_periods").higher_is_better is None


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(
        StratVectorError, match=r"unknown metric 'sharpe_ratio'; did you mean 'sharpe'"
    ):
        A.get_metric("sharpe_ratio")
    with pytest.raises(StratVectorError, match=r"did you mean 'max_drawdown'"):
        A.get_metric("max_drawdwn")
    with pytest.raises(StratVectorError, match=r"known metrics: total_return, cagr"):
        A.get_metric("zzz")


def test_benchmark_metrics_explain_why() -> None:
    with pytest.raises(StratVectorError, match=r"needs a benchmark.*alpha_beta"):
        A.get_metric("beta")


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        A.METRICS["mine"] = A.METRICS["sharpe"]  # type: ignore[index]
