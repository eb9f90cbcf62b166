"""The outcome of one backtest: arrays from the kernel, tables and metrics on demand.

Tables and metrics are computed lazily and cached, so a parameter sweep that only needs
``total_return`` pays for nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from stratvector.backtest.settings import BacktestSettings
from stratvector.backtest.trades import REASON_NAMES, trade_records, trades_frame
from stratvector.strategy.base import Strategy

ORDER_COLUMNS = [
    "signal_time",
    "time",
    "symbol",
    "quantity",
    "price",
    "commission",
    "slippage",
    "reason",
    "ref_price",
]


@dataclass(eq=False)
class BacktestResult:
    """Equity, positions, orders, trades and metrics of a backtest.

    ``equity`` is marked at each bar's close; ``orders`` lists every fill with the bar
    whose close decided it (``signal_time``) and the bar it filled in (``time``).
    """

    strategy: Strategy
    settings: BacktestSettings
    symbols: list[str]
    index: pd.DatetimeIndex
    close: np.ndarray
    target: np.ndarray
    cash: np.ndarray
    equity_values: np.ndarray
    position_values: np.ndarray
    order_records: np.ndarray
    halt_bar: int
    periods_per_year: float
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def final_equity(self) -> float:
        return float(self.equity_values[-1])

    @property
    def total_return(self) -> float:
        return float(self.equity_values[-1] / self.settings.init_cash - 1.0)

    @property
    def n_orders(self) -> int:
        return int(self.order_records.shape[0])

    @property
    def halted_at(self) -> pd.Timestamp | None:
        """The bar whose close tripped the drawdown halt, if any."""
        return None if self.halt_bar < 0 else self.index[self.halt_bar]

    @cached_property
    def equity(self) -> pd.Series:
        return pd.Series(self.equity_values, index=self.index, name="equity")

    @cached_property
    def returns(self) -> pd.Series:
        """Simple returns of equity per bar; the first is against the initial cash."""
        eq = self.equity_values
        prev = np.concatenate(([self.settings.init_cash], eq[:-1]))
        return pd.Series(eq / prev - 1.0, index=self.index, name="returns")

    @cached_property
    def positions(self) -> pd.DataFrame:
        """Shares held after each bar's close, one column per symbol."""
        return pd.DataFrame(self.position_values, index=self.index, columns=self.symbols)

    @cached_property
    def targets(self) -> pd.DataFrame:
        """The strategy's target exposure per bar (NaN before warmup)."""
        return pd.DataFrame(self.target, index=self.index, columns=self.symbols)

    @cached_property
    def orders(self) -> pd.DataFrame:
        r = self.order_records
        frame = pd.DataFrame(
            {
                "signal_time": self.index[r[:, 0].astype(np.int64)],
                "time": self.index[r[:, 1].astype(np.int64)],
                "symbol": np.asarray(self.symbols, dtype=object)[r[:, 2].astype(np.int64)],
                "quantity": r[:, 3],
                "price": r[:, 4],
                "commission": r[:, 5],
                "slippage": r[:, 6],
                "reason": np.asarray(REASON_NAMES, dtype=object)[r[:, 7].astype(np.int64)],
                "ref_price": r[:, 8],
            },
            columns=ORDER_COLUMNS,
        )
        return frame

    @cached_property
    def trade_records(self) -> np.ndarray:
        """Trades as a float array (see :mod:`stratvector.backtest.trades`), no pandas."""
        close = self.close
        last_close = np.array([_last_valid(close[:, j]) for j in range(close.shape[1])])
        return trade_records(self.order_records, len(self.symbols), last_close, len(self.index))

    @property
    def n_trades(self) -> int:
        """Round-trip trades, counting one still open at the end."""
        return int(self.trade_records.shape[0])

    @cached_property
    def trades(self) -> pd.DataFrame:
        """One row per trade: entry/exit time and price, quantity, P&L, costs, reason."""
        return trades_frame(self.trade_records, self.index, self.symbols)

    @cached_property
    def benchmark_equity(self) -> pd.Series:
        """Buy-and-hold of the traded symbols in equal weights, from the initial cash."""
        close = pd.DataFrame(self.close, index=self.index).ffill()
        rel = close / close.bfill().iloc[0]
        return (rel.mean(axis=1) * self.settings.init_cash).rename("buy_and_hold")

    @cached_property
    def metrics(self) -> dict[str, float]:
        """Return metrics (see :func:`stratvector.analytics.summary`) and trade metrics."""
        from stratvector import analytics

        bench = self.benchmark_equity
        bench_ret = bench / np.concatenate(([self.settings.init_cash], bench.to_numpy()[:-1])) - 1
        out = dict(analytics.summary(self.returns, bench_ret, self.periods_per_year))
        trades = self.trades
        closed = trades.loc[~trades["is_open"], "pnl"].to_numpy(dtype=np.float64)
        out.update(analytics.trade_stats(closed))
        out["n_trades"] = float(len(trades))
        out["n_closed_trades"] = float(len(closed))
        gross = np.abs(self.position_values * pd.DataFrame(self.close).ffill().fillna(0).to_numpy())
        out["exposure"] = analytics.exposure(gross.sum(axis=1), self.equity_values)
        traded = np.zeros(len(self.index))
        r = self.order_records
        np.add.at(traded, r[:, 1].astype(np.int64), np.abs(r[:, 3] * r[:, 4]))
        out["turnover"] = analytics.turnover(traded, self.equity_values, self.periods_per_year)
        out["n_orders"] = float(self.n_orders)
        out["total_commission"] = float(r[:, 5].sum())
        out["total_slippage"] = float(r[:, 6].sum())
        out["final_equity"] = self.final_equity
        out["total_return"] = self.total_return
        out["benchmark_return"] = float(bench.iloc[-1] / self.settings.init_cash - 1.0)
        return out

    def summary_frame(self) -> pd.DataFrame:
        """Metrics as a one-column DataFrame (for printing)."""
        return pd.DataFrame({"value": pd.Series(self.metrics)})


def _last_valid(values: np.ndarray) -> float:
    ok = np.flatnonzero(~np.isnan(values))
    return float(values[ok[-1]]) if ok.size else np.nan
