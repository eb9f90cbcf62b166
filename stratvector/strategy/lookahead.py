"""Prove a strategy causal by re-running it on truncated histories.

A causal ``target`` gives at bar t the same value whether the history ends at t or
runs on for years. :func:`check_lookahead` runs the strategy once on all bars and again
on ``bars.iloc[:k]`` for many cut points ``k``, and compares *every* value of each
truncated run with the full run. This catches a peek at the next bar (``shift(-1)``)
as well as one that touches only the end of the data (normalizing by the last close,
a centered window, a full-sample z-score), because the end moves with each cut.

It cannot see a dependence the chosen cut points never separate: with more than
``exhaustive_limit`` bars only ``n_checks`` cuts are sampled (always including the
warmup and ``len - 1``). It also checks the contract of each run: a Series on exactly
the given index, values in [-1, 1] or NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stratvector.errors import LookaheadError, StrategyError
from stratvector.strategy.base import Strategy

ABS_TOL = 1e-12
REL_TOL = 1e-9
EXHAUSTIVE_LIMIT = 300


@dataclass(frozen=True)
class LookaheadReport:
    """The outcome of a passed check: what was compared."""

    strategy: str
    bars: int
    warmup: int
    cut_points: tuple[int, ...]  # each k: the run on bars.iloc[:k] was compared
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    exhaustive: bool  # every possible cut was checked

    @property
    def n_checks(self) -> int:
        return len(self.cut_points)

    def __str__(self) -> str:
        how = "every cut point" if self.exhaustive else f"{self.n_checks} sampled cut points"
        return (
            f"{self.strategy}: no look-ahead found over {self.bars} bars "
            f"({self.start} .. {self.end}), {how}, warmup {self.warmup}"
        )


def check_lookahead(
    strategy: Strategy,
    bars: pd.DataFrame,
    n_checks: int = 50,
    seed: int = 0,
    exhaustive_limit: int = EXHAUSTIVE_LIMIT,
) -> LookaheadReport:
    """Compare ``strategy.target`` on all of ``bars`` with runs on truncated histories.

    Cut points: every ``k`` in ``1 .. len - 1`` when ``len(bars) <= exhaustive_limit``,
    else ``n_checks`` of them drawn with ``seed``, always including ``warmup`` and
    ``len - 1``. Values match when both are NaN or ``|a - b| <= 1e-12 + 1e-9 * |b|``.
    Each run gets its own copy of the bars, so a strategy that writes into its input
    cannot leak data between runs.

    Raises :class:`LookaheadError` naming the first differing bar (position, timestamp,
    both values and the cut that exposed it), or :class:`StrategyError` when a run breaks
    the contract (not a Series on the bars' index, a value outside [-1, 1], an exception).
    """
    if n_checks < 1:
        raise ValueError(f"n_checks must be >= 1, got {n_checks}")
    label = strategy.name or type(strategy).__name__
    n = len(bars)
    warmup = int(strategy.warmup)
    full = _run(strategy, bars, label)
    cuts = _cut_points(n, warmup, n_checks, seed, exhaustive_limit)

    worst: tuple[int, int, float, float] | None = None  # (position, k, full, truncated)
    failing = 0
    for k in cuts:
        part = _run(strategy, bars.iloc[:k], label)
        pos = _first_difference(full[:k], part)
        if pos is None:
            continue
        failing += 1
        if worst is None or pos < worst[0]:
            worst = (pos, k, float(full[pos]), float(part[pos]))
    if worst is not None:
        pos, k, a, b = worst
        raise LookaheadError(
            f"{label} looks ahead: its target at bar {pos} ({bars.index[pos]}) is {a!r} "
            f"with all {n} bars but {b!r} when the history ends at bar {k - 1} "
            f"({bars.index[k - 1]}); the value at a bar must depend only on bars up to it "
            f"({failing} of {len(cuts)} cut points differ)"
        )
    return LookaheadReport(
        strategy=label,
        bars=n,
        warmup=warmup,
        cut_points=tuple(cuts),
        start=bars.index[0] if n else None,
        end=bars.index[-1] if n else None,
        exhaustive=n <= exhaustive_limit,
    )


def _cut_points(n: int, warmup: int, n_checks: int, seed: int, exhaustive_limit: int) -> list[int]:
    if n < 2:
        return []
    if n <= exhaustive_limit:
        return list(range(1, n))
    fixed = {min(max(warmup, 1), n - 1), n - 1}
    rest = np.array(sorted(set(range(1, n)) - fixed))
    take = min(max(n_checks - len(fixed), 0), rest.size)
    drawn = np.random.default_rng(seed).choice(rest, size=take, replace=False)
    return sorted(fixed | {int(k) for k in drawn})


def _run(strategy: Strategy, bars: pd.DataFrame, label: str) -> np.ndarray:
    """Run ``target`` on a copy of ``bars`` and check the result's shape and range."""
    n = len(bars)
    where = f"on {n} bars" + (f" ending {bars.index[-1]}" if n else "")
    try:
        out = strategy.target(bars.copy())
    except Exception as exc:
        raise StrategyError(
            f"{label}.target raised {type(exc).__name__} {where}: {exc}; a strategy must "
            "accept any number of bars and return NaN where it lacks data"
        ) from exc
    if not isinstance(out, pd.Series):
        raise StrategyError(
            f"{label}.target returned {type(out).__name__} {where}; it must return a "
            "pandas Series on bars.index (see as_target_series)"
        )
    if len(out) != n or not out.index.equals(bars.index):
        raise StrategyError(
            f"{label}.target returned a Series of {len(out)} values whose index is not "
            f"bars.index ({where}); build it with as_target_series(values, bars)"
        )
    try:
        values = out.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise StrategyError(
            f"{label}.target returned non-numeric values (dtype {out.dtype}) {where}"
        ) from exc
    bad = np.flatnonzero(~np.isnan(values) & ~((values >= -1.0) & (values <= 1.0)))
    if bad.size:
        i = int(bad[0])
        raise StrategyError(
            f"{label}.target is {float(values[i])!r} at bar {i} ({bars.index[i]}) {where}; "
            "targets must lie in [-1, 1] (fraction of capital, long + / short -) or be NaN"
        )
    return values


def _first_difference(full: np.ndarray, part: np.ndarray) -> int | None:
    both_nan = np.isnan(full) & np.isnan(part)
    with np.errstate(invalid="ignore"):
        close = np.abs(full - part) <= ABS_TOL + REL_TOL * np.abs(full)
    diff = np.flatnonzero(~(both_nan | close))
    return int(diff[0]) if diff.size else None


__all__ = ["LookaheadReport", "check_lookahead"]
