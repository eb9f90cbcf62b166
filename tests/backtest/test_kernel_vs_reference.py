"""The numba kernel against the independent plain-Python reference, on random data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratvector.backtest import (
    BacktestSettings,
    BpsSlippage,
    HalfSpreadSlippage,
    IBKRFixed,
    IBKRTiered,
    NoCommission,
    NoSlippage,
    PercentCommission,
    PerOrderCommission,
    simulate,
)
from stratvector.data import synthetic_bars
from tests.backtest.helpers import FixedTargets
from tests.backtest.reference import RefSettings, reference_run

COMMISSIONS = {
    "none": (NoCommission(), ("none",)),
    "fixed": (IBKRFixed(), ("fixed", 0.005, 1.0, 0.01)),
    "tiered": (IBKRTiered(), ("tiered",)),
    "percent": (PercentCommission(0.001), ("percent", 0.001)),
    "per_order": (PerOrderCommission(2.5), ("per_order", 2.5)),
}
SLIPPAGES = {
    "none": (NoSlippage(), ("none",)),
    "bps": (BpsSlippage(5.0), ("bps", 5.0)),
    "half_spread": (HalfSpreadSlippage(8.0), ("half_spread", 8.0)),
}


def _random_targets(rng: np.random.Generator, n: int, n_sym: int, allow_short: bool) -> np.ndarray:
    levels = np.array([-1.0, -0.5, 0.0, 0.3, 1.0]) if allow_short else np.array([0.0, 0.5, 1.0])
    out = np.empty((n, n_sym))
    for j in range(n_sym):
        cur = 0.0
        for t in range(n):
            if rng.random() < 0.15:
                cur = float(rng.choice(levels))
            out[t, j] = np.nan if rng.random() < 0.03 else cur
    return out


def _frames(n: int, n_sym: int, seed: int, gaps: bool) -> dict[str, pd.DataFrame]:
    frames = {}
    for j in range(n_sym):
        df = synthetic_bars(n, seed=seed * 10 + j, price=20.0 + 30 * j, volatility=0.03)
        if gaps and j > 0:
            keep = np.random.default_rng(seed + j).random(n) > 0.1
            keep[:2] = True
            df = df[keep]
        frames[f"S{j}"] = df
    return frames


def _random_portfolio(seed: int, n: int, n_sym: int):
    """Synthetic symbols with gaps and random long/short targets for each."""
    rng = np.random.default_rng(seed)
    frames = _frames(n, n_sym, seed, gaps=True)
    tables = {
        s: (df, pd.Series(_random_targets(rng, len(df), 1, True)[:, 0], index=df.index))
        for s, df in frames.items()
    }
    return frames, tables


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(5, 120),
    n_sym=st.integers(1, 3),
    comm=st.sampled_from(list(COMMISSIONS)),
    slip=st.sampled_from(list(SLIPPAGES)),
    lot=st.sampled_from([0.0, 1.0, 10.0]),
    size_on_fill=st.booleans(),
    allow_short=st.booleans(),
    stops=st.tuples(
        st.sampled_from([0.0, 0.02, 0.05]),
        st.sampled_from([0.0, 0.04, 0.1]),
        st.sampled_from([0.0, 0.03, 0.08]),
    ),
    max_dd=st.sampled_from([0.0, 0.0, 0.1]),
    alloc=st.sampled_from([0.3, 0.5, 1.0]),
    gaps=st.booleans(),
    warmup=st.integers(1, 6),
)
def test_kernel_matches_reference(
    seed, n, n_sym, comm, slip, lot, size_on_fill, allow_short, stops, max_dd, alloc, gaps, warmup
):
    if lot == 0.0 and comm in ("fixed", "tiered"):
        comm = "percent"  # the reference has no closed form for fractional nonlinear fees
    rng = np.random.default_rng(seed)
    frames = _frames(n, n_sym, seed, gaps)
    index = frames["S0"].index
    for df in list(frames.values())[1:]:
        index = index.union(df.index)
    raw = _random_targets(rng, len(index), n_sym, allow_short)
    tables = {
        s: (df, pd.Series(raw[:, j], index=index).reindex(df.index))
        for j, (s, df) in enumerate(frames.items())
    }
    stop_loss, take_profit, trailing = stops
    cfg = BacktestSettings(
        init_cash=50_000.0,
        position_size=alloc,
        lot_size=lot,
        size_on="fill" if size_on_fill else "close",
        commission=COMMISSIONS[comm][0],
        slippage=SLIPPAGES[slip][0],
        stop_loss=stop_loss,
        take_profit=take_profit,
        trailing_stop=trailing,
        max_drawdown=max_dd,
    )
    result = simulate(FixedTargets(tables, warmup=warmup), frames, cfg)

    masked = np.full((len(index), n_sym), np.nan)
    bars_rows = []
    months = (
        index.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[M]").astype(int)
    )
    for t, ts in enumerate(index):
        row = {"_month": int(months[t])}
        for j, (_sym, df) in enumerate(frames.items()):
            if ts in df.index:
                k = df.index.get_loc(ts)
                row[j] = df.iloc[k][["open", "high", "low", "close"]].to_dict()
                if k >= warmup - 1:
                    masked[t, j] = raw[t, j]
            else:
                row[j] = None
        bars_rows.append(row)
    ref_cfg = RefSettings(
        init_cash=50_000.0,
        alloc=alloc,
        lot=lot,
        size_on_fill=size_on_fill,
        commission=COMMISSIONS[comm][1],
        slippage=SLIPPAGES[slip][1],
        stop_loss=stop_loss,
        take_profit=take_profit,
        trailing_stop=trailing,
        max_drawdown=max_dd,
    )
    ref_equity, ref_orders = reference_run(bars_rows, masked.tolist(), ref_cfg)

    np.testing.assert_allclose(result.equity.to_numpy(), ref_equity, rtol=0, atol=0.01)
    got = result.order_records
    assert got.shape[0] == len(ref_orders), (got[:, :5], ref_orders)
    for rec, ref in zip(got, ref_orders, strict=True):
        assert (int(rec[0]), int(rec[1]), int(rec[2])) == ref[:3]
        assert rec[3] == pytest.approx(ref[3], rel=1e-9, abs=1e-9)
        assert rec[4] == pytest.approx(ref[4], rel=1e-12)
        assert rec[5] == pytest.approx(ref[5], rel=1e-9, abs=1e-9)
        assert result.orders["reason"].iloc[0] is not None


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(3, 200),
    warmup=st.integers(1, 30),
    lot=st.sampled_from([0.0, 1.0]),
)
def test_invariants(seed, n, warmup, lot):
    """Equity = cash + positions at every bar; no trade before warmup; costs >= 0."""
    frames, tables = _random_portfolio(seed, n, 2)
    cfg = BacktestSettings(
        lot_size=lot,
        position_size=0.5,
        commission=IBKRFixed() if lot else PercentCommission(0.002),
        slippage=BpsSlippage(3.0),
        stop_loss=0.03,
    )
    r = simulate(FixedTargets(tables, warmup=warmup), frames, cfg)
    last_close = pd.DataFrame(r.close).ffill().fillna(0.0).to_numpy()
    np.testing.assert_allclose(
        r.cash + (r.position_values * last_close).sum(axis=1),
        r.equity_values,
        rtol=1e-12,
        atol=1e-6,
    )
    rec = r.order_records
    assert (rec[:, 5] >= 0).all() and (rec[:, 6] >= -1e-12).all()
    for j, (_s, df) in enumerate(frames.items()):
        first_ok = df.index[warmup - 1] if warmup - 1 < len(df) else None
        mine = rec[rec[:, 2] == j]
        if first_ok is None:
            assert len(mine) == 0
            continue
        signal_times = r.index[mine[:, 0].astype(int)]
        assert (signal_times >= first_ok).all()
        fill_times = r.index[mine[:, 1].astype(int)]
        assert (fill_times > signal_times).all() or (mine[:, 7] != 0).any()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 300))
def test_zero_cost_buy_and_hold_is_the_price_ratio(seed, n):
    bars = synthetic_bars(n, seed=seed)
    tgt = {"X": (bars, pd.Series(1.0, index=bars.index))}
    cfg = BacktestSettings(
        lot_size=0.0, size_on="fill", commission=NoCommission(), init_cash=10_000.0
    )
    r = simulate(FixedTargets(tgt), {"X": bars}, cfg)
    expected = bars["close"].iloc[-1] / bars["open"].iloc[1] - 1.0 if n > 1 else 0.0
    assert r.total_return == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert r.n_orders == (1 if n > 1 else 0)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(3, 150), lot=st.sampled_from([0.0, 1.0]))
def test_trade_pnl_adds_up_to_the_equity_change(seed, n, lot):
    """Every fill belongs to exactly one trade and open trades are marked at the last
    close, so the trades' net P&L sums to final equity minus the initial cash."""
    frames, tables = _random_portfolio(seed, n, 3)
    cfg = BacktestSettings(
        lot_size=lot,
        position_size=0.3,
        commission=IBKRFixed() if lot else PercentCommission(0.001),
        slippage=BpsSlippage(2.0),
        stop_loss=0.04,
        take_profit=0.06,
    )
    r = simulate(FixedTargets(tables), frames, cfg)
    trades = r.trades
    assert r.n_trades == len(trades)
    assert trades["pnl"].sum() == pytest.approx(r.final_equity - cfg.init_cash, abs=1e-6)
    assert trades["commission"].sum() == pytest.approx(r.order_records[:, 5].sum(), abs=1e-9)
    assert (trades["quantity"] > 0).all() and trades["is_open"].sum() <= 3
    closed = trades[~trades["is_open"]]
    assert (closed["exit_time"] >= closed["entry_time"]).all()
