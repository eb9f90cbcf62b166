"""Indicators against independent pandas references, on real AAPL bars and on
hypothesis-generated arrays (relative tolerance 1e-9)."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from stratvector.strategy import indicators as ind

RTOL = 1e-9


def assert_same(actual, expected) -> None:
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape
    np.testing.assert_array_equal(np.isnan(a), np.isnan(e), err_msg="NaN positions differ")
    np.testing.assert_allclose(a, e, rtol=RTOL, atol=0.0, equal_nan=True)


# --- pandas references (written from the textbook definitions) ----------------------------


def ref_sma(s: pd.Series, n: int) -> pd.Series:
    return s.rolling(n).mean()


def _seeded(v: pd.Series, n: int, first: int, alpha: float) -> pd.Series:
    """ewm(adjust=False) from ``first`` on, seeded with the mean of v[first-n+1 .. first]."""
    out = pd.Series(np.nan, index=v.index)
    if len(v) <= first:
        return out
    y = v.iloc[first:].copy()
    y.iloc[0] = v.iloc[first - n + 1 : first + 1].mean()
    out.iloc[first:] = y.ewm(alpha=alpha, adjust=False).mean().to_numpy()
    return out


def ref_ema(s: pd.Series, n: int) -> pd.Series:
    return _seeded(s, n, n - 1, 2.0 / (n + 1))


def ref_rsi(s: pd.Series, n: int) -> pd.Series:
    d = s.diff()
    g = _seeded(d.clip(lower=0.0), n, n, 1.0 / n)
    lo = _seeded((-d).clip(lower=0.0), n, n, 1.0 / n)
    total = g + lo
    return (100.0 * g / total).where(total != 0.0, 50.0).where(total.notna())


def ref_atr(h: pd.Series, lo: pd.Series, c: pd.Series, n: int) -> pd.Series:
    pc = c.shift(1)
    tr = pd.concat([h - lo, (h - pc).abs(), (lo - pc).abs()], axis=1).max(axis=1)
    if len(tr):
        tr.iloc[0] = np.nan  # no previous close
    return _seeded(tr, n, n, 1.0 / n)


def ref_vol(s: pd.Series, n: int, ppy: float | None) -> pd.Series:
    r = (s / s.shift(1) - 1.0).rolling(n).std(ddof=1)
    return r * math.sqrt(ppy) if ppy else r


def ref_return(s: pd.Series, n: int) -> pd.Series:
    return s / s.shift(n) - 1.0


def exact_std(window: np.ndarray, ddof: int) -> float:
    """Correctly rounded std: ``statistics`` computes the variance in exact fractions."""
    vals = [float(v) for v in window]
    return statistics.pstdev(vals) if ddof == 0 else statistics.stdev(vals)


def by_segments(x: np.ndarray, fn) -> np.ndarray:
    """Apply ``fn`` to each NaN-free run of ``x`` separately (the documented restart)."""
    out = np.full(x.size, np.nan)
    i = 0
    while i < x.size:
        if np.isnan(x[i]):
            i += 1
            continue
        j = i
        while j < x.size and not np.isnan(x[j]):
            j += 1
        out[i:j] = np.asarray(fn(pd.Series(x[i:j])), dtype=np.float64)
        i = j
    return out


# --- real data ----------------------------------------------------------------------------

WINDOWS = [1, 2, 5, 14, 20, 50, 200]


@pytest.mark.parametrize("n", WINDOWS)
def test_sma_ema_on_aapl(aapl, n):
    c = aapl["close"]
    assert_same(ind.sma(c, n), ref_sma(c, n))
    assert_same(ind.ema(c, n), ref_ema(c, n))


def test_ema_seed_is_the_sma_and_then_follows_pandas_recursion(aapl):
    c = aapl["close"].to_numpy()
    e = ind.ema(c, 10)
    assert np.isnan(e[:9]).all()
    assert e[9] == pytest.approx(c[:10].mean(), rel=1e-12)
    a = 2.0 / 11.0
    assert e[10] == pytest.approx(a * c[10] + (1 - a) * e[9], rel=1e-12)


@pytest.mark.parametrize("n", [2, 7, 14, 30])
def test_rsi_atr_on_aapl(aapl, n):
    c, h, lo = aapl["close"], aapl["high"], aapl["low"]
    r = ind.rsi(c, n)
    assert_same(r, ref_rsi(c, n))
    assert r.iloc[:n].isna().all() and r.iloc[n:].notna().all()
    assert ((r.dropna() >= 0) & (r.dropna() <= 100)).all()
    a = ind.atr(h, lo, c, n)
    assert_same(a, ref_atr(h, lo, c, n))
    assert a.iloc[:n].isna().all() and not np.isnan(a.iloc[n])


@pytest.mark.parametrize(("n", "k"), [(20, 2.0), (10, 1.5), (50, 2.5), (2, 1.0)])
def test_bollinger_on_aapl_uses_population_std(aapl, n, k):
    c = aapl["close"]
    bands = ind.bollinger(c, n, k)
    assert list(bands.columns) == ["middle", "upper", "lower"]
    sd = c.rolling(n).std(ddof=0)
    assert_same(bands["middle"], c.rolling(n).mean())
    assert_same(bands["upper"], c.rolling(n).mean() + k * sd)
    assert_same(bands["lower"], c.rolling(n).mean() - k * sd)
    # ddof=1 would be a different number: the choice is observable
    assert not np.allclose(
        (bands["upper"] - bands["middle"]).dropna(), (k * c.rolling(n).std()).dropna()
    )


@pytest.mark.parametrize("n", [2, 5, 20, 63])
@pytest.mark.parametrize("ppy", [None, 252.0])
def test_volatility_and_return_on_aapl(aapl, n, ppy):
    c = aapl["close"]
    v = ind.rolling_volatility(c, n, ppy)
    assert_same(v, ref_vol(c, n, ppy))
    assert v.iloc[:n].isna().all() and not np.isnan(v.iloc[n])
    assert_same(ind.rolling_return(c, n), ref_return(c, n))


@pytest.mark.parametrize("ddof", [0, 1, 3])
def test_rolling_std_on_aapl(aapl, ddof):
    c = aapl["close"]
    assert_same(ind.rolling_std(c, 20, ddof), c.rolling(20).std(ddof=ddof))


# --- generated data -----------------------------------------------------------------------

prices = arrays(
    np.float64,
    st.integers(0, 120),
    elements=st.floats(0.01, 10_000.0, allow_nan=False, allow_infinity=False),
)
walks = st.builds(
    lambda seed, size: 100.0 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.02, size))),
    st.integers(0, 2**32 - 1),
    st.integers(0, 300),
)
windows = st.integers(1, 40)


@settings(max_examples=150, deadline=None)
@given(x=st.one_of(prices, walks), n=windows)
def test_generated_sma_ema_rsi_return(x, n):
    s = pd.Series(x)
    assert_same(ind.sma(x, n), ref_sma(s, n))
    assert_same(ind.ema(x, n), ref_ema(s, n))
    assert_same(ind.rsi(x, n), ref_rsi(s, n))
    assert_same(ind.rolling_return(x, n), ref_return(s, n))


def exact_rolling(x: np.ndarray, n: int, ddof: int) -> np.ndarray:
    out = np.full(x.size, np.nan)
    for i in range(n - 1, x.size):
        out[i] = exact_std(x[i - n + 1 : i + 1], ddof)
    return out


def assert_close_to_pandas(actual, expected, scale: float) -> None:
    """pandas' rolling variance is a running update whose error grows with the data's level
    (we have seen 1.2e-9 relative on a random walk where the exact answer is ours), so
    the comparison allows 1e-12 x the data's scale on top of 1e-9 relative."""
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(np.asarray(expected, float)))
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=1e-12 * scale, equal_nan=True)


@settings(max_examples=150, deadline=None)
@given(x=walks, n=windows, k=st.floats(0.0, 4.0))
def test_generated_std_bollinger_volatility_match_pandas(x, n, k):
    s = pd.Series(x)
    scale = float(np.max(x)) if x.size else 1.0
    for ddof in (0, 1):
        if ddof < n:
            mine = ind.rolling_std(x, n, ddof)
            assert_close_to_pandas(mine, s.rolling(n).std(ddof=ddof), scale)
            assert_same(mine, exact_rolling(x, n, ddof))
    mid, up, lo = ind.bollinger(x, n, k)
    sd = s.rolling(n).std(ddof=0)
    assert_same(mid, ref_sma(s, n))
    assert_same(up, ref_sma(s, n) + k * sd)
    assert_same(lo, ref_sma(s, n) - k * sd)
    if n >= 2:
        vol = ind.rolling_volatility(x, n, 252.0)
        r = (s / s.shift(1) - 1.0).to_numpy()
        r_scale = float(np.nanmax(np.abs(r))) if x.size > 1 else 1.0
        assert_close_to_pandas(vol, ref_vol(s, n, 252.0), r_scale * math.sqrt(252.0))
        exact = np.concatenate([[np.nan], exact_rolling(r[1:], n, 1)]) if x.size else r
        assert_same(vol, exact * math.sqrt(252.0))


@settings(max_examples=150, deadline=None)
@given(x=prices, n=windows, k=st.floats(0.0, 4.0))
def test_generated_std_on_adversarial_values_is_exact(x, n, k):
    # Arbitrary values (spikes, long constant runs) make pandas' online variance lose
    # digits (about sqrt(eps) x scale near zero); the oracle here is the exact std.
    for ddof in (0, 1):
        if ddof < n:
            assert_same(ind.rolling_std(x, n, ddof), exact_rolling(x, n, ddof))
    mid, up, lo = ind.bollinger(x, n, k)
    sd = exact_rolling(x, n, 0)
    assert_same(mid, ref_sma(pd.Series(x), n))
    np.testing.assert_allclose(up, mid + k * sd, rtol=RTOL, atol=0.0, equal_nan=True)
    np.testing.assert_allclose(lo, mid - k * sd, rtol=RTOL, atol=0.0, equal_nan=True)
    if n >= 2 and x.size:
        r = np.concatenate([[np.nan], x[1:] / x[:-1] - 1.0])
        assert_same(ind.rolling_volatility(x, n)[1:], exact_rolling(r[1:], n, 1))


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(0, 200), n=windows)
def test_generated_atr(seed, size, n):
    rng = np.random.default_rng(seed)
    c = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.02, size)))
    o = c * np.exp(rng.normal(0, 0.01, size))
    h = np.maximum(o, c) * np.exp(np.abs(rng.normal(0, 0.01, size)))
    lo = np.minimum(o, c) * np.exp(-np.abs(rng.normal(0, 0.01, size)))
    assert_same(ind.atr(h, lo, c, n), ref_atr(pd.Series(h), pd.Series(lo), pd.Series(c), n))


# --- missing values -----------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(x=walks, n=windows, holes=st.lists(st.integers(0, 299), max_size=6))
def test_nan_inputs_follow_the_documented_rules(x, n, holes):
    x = x.copy()
    for h in holes:
        if h < x.size:
            x[h] = np.nan
    s = pd.Series(x)
    # window statistics: NaN wherever the window holds a NaN, as pandas rolling does
    assert_same(ind.sma(x, n), ref_sma(s, n))
    # pandas' rolling std accumulates error (~1e-9 relative on these walks): allow 1e-12 of
    # the data's level on top of the relative tolerance, as the other pandas comparisons do
    level = float(np.nanmax(np.abs(x))) if np.isfinite(x).any() else 1.0
    np.testing.assert_allclose(
        ind.rolling_std(x, n, 0),
        s.rolling(n).std(ddof=0),
        rtol=RTOL,
        atol=1e-12 * level,
        equal_nan=True,
    )
    assert_same(ind.rolling_return(x, n), ref_return(s, n))
    # recursive ones: NaN at the gap, then a restart as if the series began after it
    assert_same(ind.ema(x, n), by_segments(x, lambda seg: ref_ema(seg, n)))
    assert_same(ind.rsi(x, n), by_segments(x, lambda seg: ref_rsi(seg, n)))


def test_inf_counts_as_missing_and_nothing_raises():
    x = np.array([1.0, 2.0, np.inf, 4.0, 5.0, 6.0, -np.inf, 8.0, 9.0, 10.0])
    assert_same(ind.sma(x, 2), [np.nan, 1.5, np.nan, np.nan, 4.5, 5.5, np.nan, np.nan, 8.5, 9.5])
    assert_same(ind.ema(x, 2)[:6], [np.nan, 1.5, np.nan, np.nan, 4.5, 4.5 + 2 / 3 * 1.5])
    for fn in (ind.rsi, ind.rolling_return, ind.rolling_volatility):
        out = fn(x, 2)
        assert out.shape == x.shape and not np.isinf(out).any()
    out = ind.atr(x, x, x, 2)
    assert not np.isinf(out).any()


def test_atr_restarts_after_a_missing_bar():
    rng = np.random.default_rng(3)
    c = 100 + np.cumsum(rng.normal(0, 1, 60))
    h, lo = c + 1.0, c - 1.0
    h[30] = np.nan
    out = ind.atr(h, lo, c, 5)
    assert np.isnan(out[30:36]).all()  # the gap, then n fresh true ranges
    assert not np.isnan(out[36])
    assert_same(out[31:], ind.atr(h[31:], lo[31:], c[31:], 5))


def test_zero_base_return_is_nan_not_an_error():
    assert_same(ind.rolling_return(np.array([0.0, 1.0, 2.0]), 1), [np.nan, np.nan, 1.0])


def test_constant_window_std_is_exactly_zero():
    x = np.full(30, 0.1)
    assert (ind.rolling_std(x, 7, 1)[6:] == 0.0).all()
    assert (ind.rsi(x, 5)[5:] == 50.0).all()


# --- wrappers -----------------------------------------------------------------------------


def test_series_in_series_out_and_array_in_array_out(aapl):
    c = aapl["close"]
    out = ind.sma(c, 5)
    assert isinstance(out, pd.Series) and out.index.equals(c.index) and out.name == "sma_5"
    assert isinstance(ind.sma(c.to_numpy(), 5), np.ndarray)
    assert isinstance(ind.bollinger(c.to_numpy(), 5), tuple)
    assert ind.atr(aapl["high"], aapl["low"], c).index.equals(c.index)


def test_short_and_empty_inputs_are_all_nan():
    assert ind.sma(np.array([]), 3).shape == (0,)
    assert np.isnan(ind.ema(np.array([1.0, 2.0]), 3)).all()
    assert np.isnan(ind.rsi(np.array([1.0, 2.0, 3.0]), 3)).all()
    assert ind.rsi(np.array([1.0, 2.0, 3.0, 4.0]), 3)[3] == 100.0
    assert ind.rsi(np.array([4.0, 3.0, 2.0, 1.0]), 3)[3] == 0.0


@pytest.mark.parametrize(
    "call",
    [
        lambda: ind.sma(np.ones(5), 0),
        lambda: ind.sma(np.ones(5), 2.5),
        lambda: ind.ema(np.ones(5), True),
        lambda: ind.sma(np.ones((5, 2)), 2),
        lambda: ind.rolling_std(np.ones(5), 3, ddof=3),
        lambda: ind.rolling_volatility(np.ones(5), 1),
        lambda: ind.rolling_volatility(np.ones(5), 3, periods_per_year=0),
        lambda: ind.bollinger(np.ones(5), 3, num_std=-1.0),
        lambda: ind.atr(np.ones(5), np.ones(4), np.ones(5), 2),
    ],
)
def test_bad_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_numpy_integer_windows_are_accepted():
    np.testing.assert_array_equal(ind.sma(np.arange(4.0), np.int64(2))[1:], [0.5, 1.5, 2.5])
