"""Numba kernels of the parameter sweep: many single-symbol backtests in one call.

Each row of ``targets`` is one parameter set on the same symbol. The rows run in
parallel (``prange``) through the same :func:`~stratvector.backtest.nb.simulate_nb` the
plain backtester uses, and each is reduced at once to the metrics in
:data:`FAST_METRICS`, so memory stays at one equity curve per thread unless curves are
asked for. The metric definitions are those of :mod:`stratvector.analytics`
(empyrical's); tests check both paths agree.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from stratvector.backtest.nb import simulate_nb
from stratvector.backtest.trades import trades_nb

FAST_METRICS: tuple[str, ...] = (
    "total_return",
    "cagr",
    "annual_volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "n_trades",
    "win_rate",
    "profit_factor",
    "expectancy",
    "final_equity",
    "n_orders",
    "total_commission",
)
N_METRICS = len(FAST_METRICS)


@njit(cache=True)
def equity_metrics_nb(equity: np.ndarray, init_cash: float, ppy: float, out: np.ndarray) -> None:
    """Return metrics of an equity curve into ``out[0:7]`` (empyrical definitions).

    Simple returns, the first against ``init_cash``; std with ddof=1; Sortino's downside
    deviation over all periods; drawdown anchored at 1 before the first period; a zero
    denominator gives NaN.
    """
    n = equity.shape[0]
    r = np.empty(n)
    prev = init_cash
    s = 0.0
    for t in range(n):
        r[t] = equity[t] / prev - 1.0
        s += r[t]
        prev = equity[t]
    mean = s / n
    ss = 0.0
    down = 0.0
    inv = 1.0 / init_cash
    peak = 1.0
    mdd = 0.0
    for t in range(n):
        d = r[t] - mean
        ss += d * d
        if r[t] < 0.0:
            down += r[t] * r[t]
        level = equity[t] * inv
        if level > peak:
            peak = level
        dd = level / peak - 1.0
        if dd < mdd:
            mdd = dd
    total = equity[n - 1] / init_cash - 1.0
    growth = equity[n - 1] / init_cash
    cagr = growth ** (ppy / n) - 1.0 if growth > 0.0 else -1.0
    std = math.sqrt(ss / (n - 1)) if n > 1 else np.nan
    out[0] = total
    out[1] = cagr
    out[2] = std * math.sqrt(ppy)
    out[3] = mean / std * math.sqrt(ppy) if std > 0.0 else np.nan
    dr = math.sqrt(down / n)
    out[4] = mean / dr * math.sqrt(ppy) if dr > 0.0 else np.nan
    out[5] = cagr / -mdd if mdd < 0.0 else np.nan
    out[6] = mdd


@njit(cache=True)
def trade_metrics_nb(orders: np.ndarray, last_close: float, last_bar: int, out: np.ndarray) -> None:
    """Trade metrics into ``out[7:11]``: all trades; win rate, profit factor and
    expectancy over closed trades (as :func:`stratvector.analytics.trade_stats`)."""
    lc = np.array([last_close])
    rec = trades_nb(orders, 1, last_bar, lc)
    n_closed = 0
    wins = 0
    gp = 0.0
    gl = 0.0
    for i in range(rec.shape[0]):
        if rec[i, 11] > 0:  # open
            continue
        pnl = rec[i, 1] * (rec[i, 7] - rec[i, 5]) - rec[i, 8]
        n_closed += 1
        if pnl > 0:
            wins += 1
            gp += pnl
        elif pnl < 0:
            gl += pnl
    out[7] = rec.shape[0]
    out[8] = wins / n_closed if n_closed else np.nan
    out[9] = gp / -gl if gl < 0.0 else np.nan
    out[10] = (gp + gl) / n_closed if n_closed else np.nan


@njit(parallel=True, cache=True)
def sweep_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    targets: np.ndarray,
    warmups: np.ndarray,
    alloc: float,
    init_cash: float,
    lot_size: float,
    size_on_fill: bool,
    comm_code: int,
    comm_params: np.ndarray,
    slip_code: int,
    slip_params: np.ndarray,
    stop_loss: float,
    take_profit: float,
    trailing_stop: float,
    max_drawdown: float,
    rebalance_band: float,
    sigma: np.ndarray,
    adv: np.ndarray,
    month_id: np.ndarray,
    ppy: float,
    keep_equity: bool,
):
    """Backtest every row of ``targets`` (k, n) on one symbol's 1-D bars.

    Returns ``(metrics (k, N_METRICS), equity (k, n) or (0, n), out_of_range (k,))``.
    Targets before each row's ``warmups[i] - 1`` are ignored, as in the plain path; a
    row with a target outside [-1, 1] is flagged and not simulated.
    """
    k, n = targets.shape
    metrics = np.empty((k, N_METRICS))
    equity_out = np.empty((k if keep_equity else 0, n))
    bad = np.zeros(k, dtype=np.bool_)
    o2 = open_.reshape((n, 1))
    h2 = high.reshape((n, 1))
    l2 = low.reshape((n, 1))
    c2 = close.reshape((n, 1))
    a = np.array([alloc])
    last_close = np.nan
    for t in range(n - 1, -1, -1):
        if close[t] == close[t]:
            last_close = close[t]
            break
    for i in prange(k):
        tgt = targets[i].copy()
        w = warmups[i]
        for t in range(min(max(w - 1, 0), n)):
            tgt[t] = np.nan
        for t in range(n):
            if abs(tgt[t]) > 1.0 + 1e-12:
                bad[i] = True
        if bad[i]:
            metrics[i, :] = np.nan
            continue
        res = simulate_nb(
            o2,
            h2,
            l2,
            c2,
            tgt.reshape((n, 1)),
            a,
            sigma,
            adv,
            month_id,
            init_cash,
            lot_size,
            size_on_fill,
            comm_code,
            comm_params,
            slip_code,
            slip_params,
            stop_loss,
            take_profit,
            trailing_stop,
            max_drawdown,
            rebalance_band,
            False,  # no cash/position histories: only equity is needed
        )
        equity = res[1]
        orders = res[3]
        row = metrics[i]
        equity_metrics_nb(equity, init_cash, ppy, row)
        trade_metrics_nb(orders, last_close, n - 1, row)
        row[11] = equity[n - 1]
        row[12] = orders.shape[0]
        comm = 0.0
        for j in range(orders.shape[0]):
            comm += orders[j, 5]
        row[13] = comm
        if keep_equity:
            equity_out[i] = equity
    return metrics, equity_out, bad
