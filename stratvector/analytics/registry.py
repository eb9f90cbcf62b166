"""Look up a metric by its summary key, for the optimizer and configs.

Every key of :data:`~stratvector.analytics.summary.SUMMARY_KEYS` that needs only the
returns has an entry: ``get_metric("sharpe")(returns, 252)`` equals
``summary(returns, periods_per_year=252)["sharpe"]`` (with ``risk_free=0``). ``alpha``
and ``beta`` need a benchmark and are not in the registry. The registry is an
immutable mapping built at import; nothing is registered at run time.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from stratvector.analytics import distribution, drawdown, ratios, returns, tail
from stratvector.analytics._arrays import ArrayLike, clean
from stratvector.errors import StratVectorError

MetricFunc = Callable[[ArrayLike, float], float]
"""``func(returns, periods_per_year) -> float``."""


@dataclass(frozen=True, slots=True)
class Metric:
    """A named metric of a return series.

    ``higher_is_better`` tells an optimizer which way to search: True to maximize,
    False to minimize (risks, VaR as a positive loss, drawdown duration), None when
    neither direction is better (``kurtosis`` is a shape, ``n_periods`` a count).
    Note that ``max_drawdown`` is a negative fraction, so higher (closer to 0) is better.
    """

    name: str
    func: MetricFunc
    higher_is_better: bool | None

    def __call__(self, returns: ArrayLike, periods_per_year: float = 252) -> float:
        return float(self.func(returns, periods_per_year))


def _n_periods(r: ArrayLike, ppy: float) -> float:
    return float(clean(r).size)


_ENTRIES: tuple[tuple[str, MetricFunc, bool | None], ...] = (
    ("total_return", lambda r, ppy: returns.total_return(r), True),
    ("cagr", returns.cagr, True),
    ("annual_volatility", returns.annual_volatility, False),
    ("sharpe", lambda r, ppy: ratios.sharpe_ratio(r, 0.0, ppy), True),
    ("sortino", lambda r, ppy: ratios.sortino_ratio(r, 0.0, ppy), True),
    ("calmar", ratios.calmar_ratio, True),
    ("max_drawdown", lambda r, ppy: drawdown.max_drawdown(r), True),
    ("max_drawdown_duration", lambda r, ppy: drawdown.max_drawdown_duration(r), False),
    ("var_95", lambda r, ppy: tail.value_at_risk(r, 0.95), False),
    ("cvar_95", lambda r, ppy: tail.conditional_value_at_risk(r, 0.95), False),
    ("var_99", lambda r, ppy: tail.value_at_risk(r, 0.99), False),
    ("cvar_99", lambda r, ppy: tail.conditional_value_at_risk(r, 0.99), False),
    ("parametric_var_95", lambda r, ppy: tail.parametric_var(r, 0.95), False),
    ("cornish_fisher_var_95", lambda r, ppy: tail.cornish_fisher_var(r, 0.95), False),
    ("omega", lambda r, ppy: ratios.omega_ratio(r, 0.0, 0.0, ppy), True),
    ("tail_ratio", lambda r, ppy: ratios.tail_ratio(r), True),
    ("stability", lambda r, ppy: ratios.stability(r), True),
    ("skew", lambda r, ppy: distribution.skew(r), True),
    ("kurtosis", lambda r, ppy: distribution.kurtosis(r), None),
    ("best_period", lambda r, ppy: distribution.best_period(r), True),
    ("worst_period", lambda r, ppy: distribution.worst_period(r), True),
    ("downside_risk", lambda r, ppy: ratios.downside_risk(r, 0.0, ppy), False),
    ("avg_return", lambda r, ppy: distribution.avg_return(r), True),
    ("win_rate_periods", lambda r, ppy: distribution.win_rate_periods(r), True),
    ("n_periods", _n_periods, None),
)

METRICS: Mapping[str, Metric] = MappingProxyType(
    {name: Metric(name, func, hib) for name, func, hib in _ENTRIES}
)
"""Read-only mapping of metric name -> :class:`Metric`."""

_NEEDS_BENCHMARK = ("alpha", "beta")


def metric_names() -> tuple[str, ...]:
    """Names accepted by :func:`get_metric`, in summary order."""
    return tuple(METRICS)


def get_metric(name: str) -> Metric:
    """The metric called ``name``, a callable ``(returns, periods_per_year=252) -> float``.

    Raises :class:`~stratvector.errors.StratVectorError` for an unknown name, suggesting
    the closest known names, and for ``alpha``/``beta``, which need a benchmark.
    """
    metric = METRICS.get(name)
    if metric is not None:
        return metric
    if name in _NEEDS_BENCHMARK:
        raise StratVectorError(
            f"metric {name!r} needs a benchmark and cannot be computed from returns alone; "
            "use stratvector.analytics.alpha_beta(returns, benchmark) or "
            "summary(returns, benchmark=...)"
        )
    close = difflib.get_close_matches(str(name).lower(), list(METRICS), n=3, cutoff=0.5)
    hint = f" did you mean {', '.join(map(repr, close))}?" if close else ""
    raise StratVectorError(f"unknown metric {name!r};{hint} known metrics: {', '.join(METRICS)}")
