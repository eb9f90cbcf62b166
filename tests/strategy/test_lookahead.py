"""The look-ahead check: built-ins pass, peeking strategies are caught at the right bar."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from stratvector.errors import LookaheadError, StrategyError
from stratvector.strategy import Strategy, as_target_series, check_lookahead
from stratvector.strategy.builtins import BUILTINS, Momentum, SmaCrossover
from stratvector.strategy.lookahead import LookaheadReport


class NextBarPeeker(Strategy):
    """Long when tomorrow's close is higher: the classic shift(-1) bug, from bar 20 on."""

    name = "next_bar_peeker"

    @property
    def warmup(self) -> int:
        return 21

    def target(self, bars):
        c = bars["close"]
        t = np.sign(c.shift(-1) - c)
        t.iloc[:20] = np.nan
        return as_target_series(t, bars)


class LastCloseNormalizer(Strategy):
    """Scales by the last close of the data: wrong everywhere, but only via the end."""

    name = "last_close_normalizer"

    def target(self, bars):
        c = bars["close"]
        return as_target_series((c / c.iloc[-1] - 1.0).clip(-1.0, 1.0), bars)


class CenteredWindow(Strategy):
    """A centered rolling mean: two bars of future in every value."""

    name = "centered"

    def target(self, bars):
        c = bars["close"]
        m = c.rolling(5, center=True).mean()
        return as_target_series(np.sign(c - m), bars)


class PeeksAtOneBar(Strategy):
    """Causal except at bar ``at``, whose value uses the next close."""

    name = "one_bar_peeker"
    at = 137

    def target(self, bars):
        t = np.zeros(len(bars))
        c = bars["close"].to_numpy()
        if len(bars) > self.at + 1:
            t[self.at] = np.sign(c[self.at + 1] - c[self.at])
        return as_target_series(t, bars)


class LengthNoise(Strategy):
    """Adds ``eps`` on histories of odd length (round-off between runs)."""

    name = "noise"
    eps = 1e-13

    def target(self, bars):
        return as_target_series(np.full(len(bars), 0.5 + self.eps * (len(bars) % 2)), bars)


def make(name: str, fn, warmup: int = 1) -> Strategy:
    cls = type(name, (Strategy,), {"name": name, "target": lambda self, bars: fn(bars)})
    cls.warmup = property(lambda self: warmup)
    return cls()


def bar_ref(bars: pd.DataFrame, pos: int) -> str:
    return f"bar {pos} ({bars.index[pos]})"


# --- built-ins pass -----------------------------------------------------------------------


@pytest.mark.parametrize("cls", BUILTINS, ids=lambda c: c.name)
def test_builtins_pass_on_real_aapl(cls, aapl):
    report = check_lookahead(cls(), aapl)
    assert isinstance(report, LookaheadReport)
    assert report.bars == len(aapl) and not report.exhaustive
    assert report.n_checks == 50
    assert report.warmup in report.cut_points and len(aapl) - 1 in report.cut_points
    assert "no look-ahead found" in str(report)


@pytest.mark.parametrize(
    "strategy",
    [
        SmaCrossover(fast=3, slow=12, allow_short=True),
        Momentum(lookback_period=5, allow_short=True),
        *[cls() for cls in BUILTINS],
    ],
    ids=repr,
)
def test_builtins_pass_every_cut_on_a_short_aapl_window(strategy, aapl):
    bars = aapl.iloc[1500:1780]
    report = check_lookahead(strategy, bars)
    assert report.exhaustive and report.cut_points == tuple(range(1, len(bars)))
    assert report.start == bars.index[0] and report.end == bars.index[-1]


def test_sampling_is_seeded(aapl):
    a = check_lookahead(Momentum(), aapl, n_checks=20, seed=1).cut_points
    assert a == check_lookahead(Momentum(), aapl, n_checks=20, seed=1).cut_points
    assert a != check_lookahead(Momentum(), aapl, n_checks=20, seed=2).cut_points
    assert len(a) == 20 and 15 in a and len(aapl) - 1 in a
    assert list(a) == sorted(set(a))


def test_check_does_not_touch_the_bars(aapl):
    before = aapl.copy()
    check_lookahead(SmaCrossover(), aapl, n_checks=5)
    pd.testing.assert_frame_equal(aapl, before)


# --- peeking strategies are caught --------------------------------------------------------


def test_next_bar_peek_names_the_first_peeking_bar(small_bars):
    with pytest.raises(LookaheadError) as err:
        check_lookahead(NextBarPeeker(), small_bars)
    msg = str(err.value)
    assert "next_bar_peeker looks ahead" in msg
    assert bar_ref(small_bars, 20) in msg
    assert f"ends at bar 20 ({small_bars.index[20]})" in msg
    full = float(NextBarPeeker().target(small_bars).iloc[20])
    assert f"is {full!r} with all {len(small_bars)} bars but nan" in msg


def test_next_bar_peek_caught_on_sampled_aapl(aapl):
    with pytest.raises(LookaheadError, match=r"looks ahead: its target at bar \d+"):
        check_lookahead(NextBarPeeker(), aapl)


def test_peek_at_a_single_bar_is_located(small_bars):
    with pytest.raises(LookaheadError) as err:
        check_lookahead(PeeksAtOneBar(), small_bars)
    msg = str(err.value)
    assert bar_ref(small_bars, 137) in msg
    assert "but 0.0 when the history ends at bar 137" in msg
    assert "(1 of 239 cut points differ)" in msg


@pytest.mark.parametrize("strategy", [LastCloseNormalizer(), CenteredWindow()], ids=repr)
def test_end_only_peeks_are_caught(strategy, aapl, small_bars):
    for bars in (small_bars, aapl):
        with pytest.raises(LookaheadError, match="looks ahead"):
            check_lookahead(strategy, bars)


def test_last_close_normalizer_fails_at_bar_zero(small_bars):
    with pytest.raises(LookaheadError, match=re.escape(bar_ref(small_bars, 0))):
        check_lookahead(LastCloseNormalizer(), small_bars)


def test_tolerance_accepts_round_off_but_not_real_differences(small_bars):
    check_lookahead(LengthNoise(), small_bars)
    noisy = LengthNoise()
    noisy.eps = 1e-6
    with pytest.raises(LookaheadError):
        check_lookahead(noisy, small_bars)


def test_nan_against_a_value_is_a_difference(small_bars):
    # NaN only on the last bar of every run: a NaN/value mismatch, never "equal"
    def fn(bars):
        t = np.zeros(len(bars))
        t[-1] = np.nan
        return as_target_series(t, bars)

    with pytest.raises(LookaheadError, match=r"at bar 0 .* is 0\.0 with all 240 bars but nan"):
        check_lookahead(make("last_nan", fn), small_bars)


# --- contract violations ------------------------------------------------------------------


def test_out_of_range_targets_are_rejected(small_bars):
    def fn(bars):
        t = np.zeros(len(bars))
        t[10:] = 1.5
        return as_target_series(t, bars)

    with pytest.raises(StrategyError, match=r"is 1\.5 at " + re.escape(bar_ref(small_bars, 10))):
        check_lookahead(make("leveraged", fn), small_bars)


@pytest.mark.parametrize("bad", [np.inf, -1.0000001, -np.inf])
def test_any_value_outside_unit_interval_is_rejected(bad, small_bars):
    strat = make("bad", lambda bars: as_target_series(np.full(len(bars), bad), bars))
    with pytest.raises(StrategyError, match=r"must lie in \[-1, 1\]"):
        check_lookahead(strat, small_bars)


@pytest.mark.parametrize(
    ("fn", "match"),
    [
        (lambda bars: np.zeros(len(bars)), "returned ndarray"),
        (lambda bars: pd.Series(np.zeros(len(bars))), "index is not bars.index"),
        (lambda bars: as_target_series(np.zeros(len(bars)), bars).iloc[1:], "index is not"),
        (lambda bars: pd.Series(["a"] * len(bars), index=bars.index), "non-numeric"),
    ],
)
def test_misshapen_targets_are_rejected(fn, match, small_bars):
    with pytest.raises(StrategyError, match=match):
        check_lookahead(make("misshapen", fn), small_bars)


def test_a_strategy_that_crashes_on_short_history_is_reported(small_bars):
    def fn(bars):
        if len(bars) < 30:
            raise IndexError("not enough bars")
        return as_target_series(np.zeros(len(bars)), bars)

    with pytest.raises(StrategyError, match="raised IndexError on 1 bars") as err:
        check_lookahead(make("fragile", fn), small_bars)
    assert not isinstance(err.value, LookaheadError)


def test_lookahead_error_is_a_strategy_error():
    assert issubclass(LookaheadError, StrategyError)


def test_bad_n_checks(small_bars):
    with pytest.raises(ValueError, match="n_checks"):
        check_lookahead(Momentum(), small_bars, n_checks=0)


def test_one_bar_history_only_checks_the_contract(small_bars):
    report = check_lookahead(Momentum(), small_bars.iloc[:1])
    assert report.cut_points == () and report.bars == 1
