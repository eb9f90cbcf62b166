"""Trade-level statistics from the net P&L of each closed trade.

Input: one number per closed trade, its P&L after commissions and slippage, in any unit
(currency or a return fraction); outputs are in the same unit except counts and
ratios. A trade with P&L > 0 is a win, < 0 a loss, exactly 0 a scratch (counted in
``n_trades`` and the win-rate denominator, but neither a win nor a loss). NaN entries
are dropped. Losses keep their sign: ``avg_loss``, ``largest_loss`` and ``gross_loss``
are negative numbers.
"""

from __future__ import annotations

from stratvector.analytics._arrays import ArrayLike, clean

TRADE_STATS_KEYS: tuple[str, ...] = (
    "n_trades",
    "n_wins",
    "n_losses",
    "win_rate",
    "gross_profit",
    "gross_loss",
    "profit_factor",
    "expectancy",
    "avg_win",
    "avg_loss",
    "payoff_ratio",
    "largest_win",
    "largest_loss",
)
"""The keys of :func:`trade_stats`, in order."""

_NAN = float("nan")


def trade_stats(pnl: ArrayLike) -> dict[str, float]:
    """Summary statistics of per-trade net P&L.

    ================  =======================================================================
    key               definition (NaN when undefined)
    ================  =======================================================================
    n_trades          number of trades (non-NaN entries)
    n_wins            trades with P&L > 0
    n_losses          trades with P&L < 0
    win_rate          ``n_wins / n_trades`` in [0, 1]; NaN with no trades
    gross_profit      sum of winning P&L (>= 0; 0 with no wins)
    gross_loss        sum of losing P&L (<= 0; 0 with no losses)
    profit_factor     ``gross_profit / -gross_loss``; NaN with no losses (zero denominator)
    expectancy        mean P&L per trade; NaN with no trades
    avg_win           mean of winning P&L; NaN with no wins
    avg_loss          mean of losing P&L (negative); NaN with no losses
    payoff_ratio      ``avg_win / abs(avg_loss)``; NaN unless there are wins and losses
    largest_win       largest winning P&L; NaN with no wins
    largest_loss      most negative losing P&L; NaN with no losses
    ================  =======================================================================

    Zero trades never raise: counts and gross sums are 0 and everything else is NaN.
    """
    x = clean(pnl, "pnl")
    wins = x[x > 0]
    losses = x[x < 0]
    n, nw, nl = x.size, wins.size, losses.size
    gross_profit = float(wins.sum())
    gross_loss = float(losses.sum())
    avg_win = gross_profit / nw if nw else _NAN
    avg_loss = gross_loss / nl if nl else _NAN
    return {
        "n_trades": float(n),
        "n_wins": float(nw),
        "n_losses": float(nl),
        "win_rate": nw / n if n else _NAN,
        "gross_profit": gross_profit,
        "gross_loss": gross_loss,
        "profit_factor": gross_profit / -gross_loss if nl else _NAN,
        "expectancy": float(x.mean()) if n else _NAN,
        "avg_win": avg_win,
        "avg_loss": avg_loss,
        "payoff_ratio": avg_win / -avg_loss if nw and nl else _NAN,
        "largest_win": float(wins.max()) if nw else _NAN,
        "largest_loss": float(losses.min()) if nl else _NAN,
    }
