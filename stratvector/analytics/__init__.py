"""Performance metrics shared by the backtester, risk jobs, drift detection and dashboards.

Plain functions over numpy arrays (a pandas Series is accepted and converted at the
edge). Conventions, the same everywhere (see ARCHITECTURE.md, "Metrics"):

- Simple per-period returns as fractions (0.01 = 1 %); ``periods_per_year`` annualizes
  (252 for daily bars; intraday from :func:`stratvector.data.periods_per_year`).
- Standard deviations with ``ddof=1``; max drawdown is a NEGATIVE fraction; VaR and
  CVaR are POSITIVE one-period losses (fractions of equity).
- Definitions match empyrical (empyrical-reloaded). Deviations are named in each
  function's docstring; the main one is that a ratio with a zero denominator is NaN,
  never +-inf.
- NaN returns are dropped before a scalar metric (e.g. the leading NaN of
  ``pct_change``); too little data gives NaN, never an exception. Bad shapes and
  parameters raise :class:`~stratvector.errors.StratVectorError`.

Modules: :mod:`.returns` (equity -> returns, growth, volatility), :mod:`.drawdown`,
:mod:`.distribution` (mean, extremes, moments), :mod:`.ratios`, :mod:`.benchmark`
(alpha/beta), :mod:`.tail` (VaR/CVaR), :mod:`.trades`, :mod:`.positions` (exposure,
turnover), :mod:`.tables` (monthly table), :mod:`.summary`, :mod:`.registry`.
"""

from stratvector.analytics.benchmark import alpha, alpha_beta, beta
from stratvector.analytics.distribution import (
    Moments,
    avg_return,
    best_period,
    kurtosis,
    moments,
    skew,
    win_rate_periods,
    worst_period,
)
from stratvector.analytics.drawdown import (
    drawdown_series,
    drawdown_stats,
    max_drawdown,
    max_drawdown_duration,
)
from stratvector.analytics.positions import exposure, turnover
from stratvector.analytics.ratios import (
    calmar_ratio,
    downside_risk,
    omega_ratio,
    sharpe_ratio,
    sortino_ratio,
    stability,
    tail_ratio,
)
from stratvector.analytics.registry import METRICS, Metric, get_metric, metric_names
from stratvector.analytics.returns import (
    align_returns,
    annual_volatility,
    cagr,
    cumulative_returns,
    returns_from_equity,
    total_return,
)
from stratvector.analytics.summary import SUMMARY_KEYS, summary
from stratvector.analytics.tables import monthly_returns
from stratvector.analytics.tail import (
    conditional_value_at_risk,
    cornish_fisher_var,
    cornish_fisher_z,
    historical_var_cvar,
    parametric_cvar,
    parametric_var,
    value_at_risk,
)
from stratvector.analytics.trades import TRADE_STATS_KEYS, trade_stats

__all__ = [
    "METRICS",
    "SUMMARY_KEYS",
    "TRADE_STATS_KEYS",
    "Metric",
    "Moments",
    "align_returns",
    "alpha",
    "alpha_beta",
    "annual_volatility",
    "avg_return",
    "best_period",
    "beta",
    "cagr",
    "calmar_ratio",
    "conditional_value_at_risk",
    "cornish_fisher_var",
    "cornish_fisher_z",
    "cumulative_returns",
    "downside_risk",
    "drawdown_series",
    "drawdown_stats",
    "exposure",
    "get_metric",
    "historical_var_cvar",
    "kurtosis",
    "max_drawdown",
    "max_drawdown_duration",
    "metric_names",
    "moments",
    "monthly_returns",
    "omega_ratio",
    "parametric_cvar",
    "parametric_var",
    "returns_from_equity",
    "sharpe_ratio",
    "skew",
    "sortino_ratio",
    "stability",
    "summary",
    "tail_ratio",
    "total_return",
    "trade_stats",
    "turnover",
    "value_at_risk",
    "win_rate_periods",
    "worst_period",
]
