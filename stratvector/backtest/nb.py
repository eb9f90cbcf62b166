"""Numba kernels of the portfolio simulation: plain functions over arrays.

Everything here takes and returns numpy arrays; :mod:`stratvector.backtest.engine` is the
pandas layer on top. Arrays of market data are shaped ``(n_bars, n_symbols)``; a NaN
price means the symbol has no bar at that time (it neither fills nor triggers stops,
and is valued at its last close).

Timing (the project convention, the same live):

1. At bar t's **open**, orders decided at an earlier close fill at the open, after
   slippage. Then protective exits are checked inside bar t on its high/low: stop-loss
   and trailing stop (sell stops for longs) before take-profit (a limit), because the
   order of high and low within a bar is unknown. A stop fills at the stop price, or at
   the open when the bar gaps through it, plus slippage; a take-profit fills at its limit
   (or a better open) without slippage.
2. At bar t's **close**, equity is marked to the close. For each symbol whose target
   changed (or, with a rebalance band, whose weight drifted past it), the order quantity
   is decided: whole lots of ``target * allocation * equity / close`` minus the position,
   sells first, and buys capped by the cash they would need at the close. The order
   fills at bar t+1's open. A same-bar-close fill is not offered: it is look-ahead.

``size_on_fill=True`` is a research mode matching vectorbt and backtesting.py: the
quantity is decided at the fill (``target * allocation * equity at the open / open``,
capped by cash at the slipped fill price). Live cannot know that price, so parity runs
use the default.

After a stop or take-profit closes a position, the symbol stays flat until its target
changes, as the live runner does (it only acts on target changes).

With ``max_drawdown > 0`` a close at or below ``(1 - max_drawdown)`` of the peak equity
halts the portfolio: every position is closed at the next open and nothing trades again
(the live kill switch). Equity at or below zero halts it too.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from stratvector.backtest.costs import COMM_PER_ORDER, COMM_PERCENT, commission_nb, slipped_price_nb
from stratvector.backtest.fills import limit_fill_nb, stop_fill_nb

# order reasons (stored in the order records)
REASON_SIGNAL = 0
REASON_STOP_LOSS = 1
REASON_TAKE_PROFIT = 2
REASON_TRAILING_STOP = 3
REASON_HALT = 4

_EPS = 1e-9


@njit(cache=True)
def round_lot_nb(qty: float, lot_size: float) -> float:
    """Whole lots toward zero; ``lot_size <= 0`` means fractional quantities."""
    if lot_size <= 0.0:
        return qty
    return math.trunc(qty / lot_size + 1e-9 * (1.0 if qty >= 0 else -1.0)) * lot_size


@njit(cache=True)
def affordable_qty_nb(
    cash: float,
    price: float,
    lot_size: float,
    comm_code: int,
    comm_params: np.ndarray,
    month_volume: float,
) -> float:
    """Largest buy quantity whose cost ``qty * price + commission`` fits in ``cash``."""
    if cash <= 0.0 or price <= 0.0:
        return 0.0
    if comm_code == COMM_PERCENT:
        q = cash / (price * (1.0 + comm_params[0]))
    elif comm_code == COMM_PER_ORDER:
        q = (cash - comm_params[0]) / price
    else:
        q = cash / price
        for _ in range(3):
            q = (
                cash - commission_nb(comm_code, comm_params, q, price, month_volume, False)
            ) / price
    q = round_lot_nb(max(q, 0.0), lot_size)
    step = lot_size if lot_size > 0.0 else q * 1e-9
    for _ in range(1000):  # bounded: a few lots at most for the nonlinear models
        if q <= 0.0:
            return 0.0
        cost = q * price + commission_nb(comm_code, comm_params, q, price, month_volume, False)
        if cost <= cash * (1.0 + 1e-12):
            return q
        q -= step
    return max(q, 0.0)


@njit(cache=True)
def target_changes_nb(close: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``out[t]``: some symbol with a bar at t has an effective target (NaN -> 0) that
    differs from its effective target at its previous bar (0 before its first bar).

    On bars where this is False, and nothing is pending or protected, the simulation
    only marks equity to market (see the quiet-bar path of :func:`simulate_nb`).
    """
    n_bars, n_sym = close.shape
    out = np.zeros(n_bars, dtype=np.bool_)
    for j in range(n_sym):
        prev = 0.0
        for t in range(n_bars):
            if close[t, j] != close[t, j]:
                continue
            tgt = target[t, j]
            if tgt != tgt:
                tgt = 0.0
            if tgt != prev:
                out[t] = True
            prev = tgt
    return out


@njit(cache=True)
def simulate_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    target: np.ndarray,
    alloc: np.ndarray,
    sigma: np.ndarray,
    adv: np.ndarray,
    month_id: np.ndarray,
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
    record: bool = True,
):
    """Simulate one cash account trading ``n_symbols`` from their target exposures.

    ``target[t, j]`` is the exposure decided at bar t's close (NaN = flat); ``alloc[j]``
    the fraction of equity allotted to symbol j; ``sigma``/``adv`` the volatility and
    average volume known before bar t opens (square-root impact only); ``month_id[t]``
    a month counter for tiered commissions. Stop, take-profit and trailing fractions are
    0 when off. ``record=False`` skips the per-bar cash and position histories (sweeps
    only need equity); the returned arrays are then empty.

    Returns ``(cash, equity, positions, order_rec, n_orders, halt_bar)`` where
    ``order_rec`` columns are: signal bar, fill bar, symbol, signed quantity, fill price,
    commission, slippage cost, reason, reference price (pre-slippage).
    """
    n_bars, n_sym = close.shape
    cash_out = np.empty(n_bars if record else 0)
    equity_out = np.empty(n_bars)
    pos_out = np.empty((n_bars if record else 0, n_sym))
    rec = np.empty((16 + n_bars // 16, 9))  # grows by doubling in _fill
    n_rec = 0

    cash = init_cash
    pos = np.zeros(n_sym)
    last_px = np.full(n_sym, np.nan)
    last_target = np.zeros(n_sym)
    pend_qty = np.zeros(n_sym)
    pend_tgt = np.zeros(n_sym)
    pend_bar = np.full(n_sym, -1)
    has_pend = np.zeros(n_sym, dtype=np.bool_)
    entry_px = np.full(n_sym, np.nan)
    peak_px = np.full(n_sym, np.nan)
    want = np.zeros(n_sym)
    month_vol = 0.0
    cur_month = -1
    peak_equity = init_cash
    halted = False
    halt_bar = -1
    use_stops = stop_loss > 0.0 or take_profit > 0.0 or trailing_stop > 0.0
    changes = target_changes_nb(close, target)

    for t in range(n_bars):
        if month_id[t] != cur_month:
            cur_month = month_id[t]
            month_vol = 0.0

        # ---- quiet bar: nothing pending, protected or changing: only mark to market ----
        if not changes[t] and not halted and rebalance_band <= 0.0:
            quiet = True
            for j in range(n_sym):
                if has_pend[j] or (use_stops and pos[j] != 0.0):
                    quiet = False
                    break
            if quiet:
                equity = mark_equity_nb(cash, pos, close, t, last_px)
                if equity > peak_equity:
                    peak_equity = equity
                if not _trips_halt(equity, peak_equity, max_drawdown):
                    equity_out[t] = equity
                    if record:
                        cash_out[t] = cash
                        for j in range(n_sym):
                            pos_out[t, j] = pos[j]
                    continue
                # the halt trips at this close: take the full path below (idempotent:
                # the marks and the peak are recomputed to the same values)

        # ---- open: fill pending orders ---------------------------------------------
        any_pending = False
        for j in range(n_sym):
            if has_pend[j]:
                any_pending = True
                break
        eq_open = cash
        if any_pending and size_on_fill:
            for j in range(n_sym):
                if pos[j] != 0.0:
                    px = open_[t, j] if open_[t, j] == open_[t, j] else last_px[j]
                    eq_open += pos[j] * px
        for k in range(2 if any_pending else 0):  # sells first, then buys: proceeds fund buys
            for j in range(n_sym):
                if not has_pend[j] or open_[t, j] != open_[t, j]:
                    continue
                ref = open_[t, j]
                if size_on_fill:
                    desired = round_lot_nb(pend_tgt[j] * alloc[j] * eq_open / ref, lot_size)
                    qty = desired - pos[j]
                else:
                    qty = pend_qty[j]
                if (k == 0) != (qty < 0.0):
                    continue
                has_pend[j] = False
                if abs(qty) <= _EPS * max(1.0, abs(pos[j])):
                    continue
                side = 1.0 if qty > 0.0 else -1.0
                px = slipped_price_nb(
                    slip_code, slip_params, ref, abs(qty), side, sigma[t, j], adv[t, j]
                )
                if size_on_fill and qty > 0.0:
                    # a buy that opens or adds: capped by cash at the fill price
                    cap = affordable_qty_nb(cash, px, lot_size, comm_code, comm_params, month_vol)
                    if pos[j] >= 0.0 and qty > cap:
                        qty = cap
                        if qty <= 0.0:
                            continue
                comm = commission_nb(comm_code, comm_params, abs(qty), px, month_vol, qty < 0.0)
                reason = REASON_HALT if halted else REASON_SIGNAL
                rec = _room(rec, n_rec)
                n_rec = _fill(rec, n_rec, pend_bar[j], t, j, qty, px, comm, ref, reason)
                cash -= qty * px + comm
                month_vol += abs(qty)
                old = pos[j]
                pos[j] = old + qty
                if abs(pos[j]) <= _EPS:
                    pos[j] = 0.0
                _update_entry(old, pos[j], qty, px, entry_px, peak_px, j)

        # ---- intrabar: protective exits -----------------------------------------------
        if use_stops:
            for j in range(n_sym):
                p = pos[j]
                if p == 0.0 or open_[t, j] != open_[t, j]:
                    continue
                o, h, lo = open_[t, j], high[t, j], low[t, j]
                side = -1.0 if p > 0.0 else 1.0  # the exit order's side
                stop = np.nan
                reason = REASON_STOP_LOSS
                if stop_loss > 0.0:
                    stop = entry_px[j] * (1.0 + side * stop_loss)
                if trailing_stop > 0.0:
                    trail = peak_px[j] * (1.0 + side * trailing_stop)
                    tighter = stop != stop or (trail > stop if p > 0.0 else trail < stop)
                    if tighter:
                        stop = trail
                        reason = REASON_TRAILING_STOP
                fill_ref = np.nan
                if stop == stop:
                    fill_ref = stop_fill_nb(side, stop, o, h, lo)
                px = np.nan
                if fill_ref == fill_ref:
                    px = slipped_price_nb(
                        slip_code, slip_params, fill_ref, abs(p), side, sigma[t, j], adv[t, j]
                    )
                elif take_profit > 0.0:
                    limit = entry_px[j] * (1.0 - side * take_profit)
                    fill_ref = limit_fill_nb(side, limit, o, h, lo)
                    px = fill_ref
                    reason = REASON_TAKE_PROFIT
                if px == px:
                    qty = -p
                    comm = commission_nb(comm_code, comm_params, abs(qty), px, month_vol, qty < 0.0)
                    rec = _room(rec, n_rec)
                    n_rec = _fill(rec, n_rec, t, t, j, qty, px, comm, fill_ref, reason)
                    cash -= qty * px + comm
                    month_vol += abs(qty)
                    pos[j] = 0.0
                    entry_px[j] = np.nan
                    peak_px[j] = np.nan
                    has_pend[j] = False
                elif trailing_stop > 0.0:
                    peak_px[j] = max(peak_px[j], h) if p > 0.0 else min(peak_px[j], lo)

        # ---- close: mark to market, decide orders ----------------------------------------
        equity = mark_equity_nb(cash, pos, close, t, last_px)
        equity_out[t] = equity
        if record:
            cash_out[t] = cash
            for j in range(n_sym):
                pos_out[t, j] = pos[j]
        if equity > peak_equity:
            peak_equity = equity
        if not halted and _trips_halt(equity, peak_equity, max_drawdown):
            halted = True
            halt_bar = t

        any_want = False
        for j in range(n_sym):
            want[j] = np.nan
            c = close[t, j]
            if c != c:
                continue
            act, tgt = close_act_nb(
                c, target[t, j], pos[j], last_target[j], alloc[j], equity, halted, rebalance_band
            )
            if not act:
                continue
            last_target[j] = tgt
            if size_on_fill:
                pend_tgt[j] = tgt
                pend_bar[j] = t
                has_pend[j] = True
            else:
                want[j] = round_lot_nb(tgt * alloc[j] * max(equity, 0.0) / c, lot_size) - pos[j]
                any_want = True
        if any_want:
            decide_close_orders_nb(
                want,
                close[t],
                pos,
                cash,
                lot_size,
                comm_code,
                comm_params,
                slip_code,
                slip_params,
                sigma[t],
                adv[t],
                month_vol,
                t,
                pend_qty,
                pend_bar,
                has_pend,
            )
    return cash_out, equity_out, pos_out, rec[:n_rec], n_rec, halt_bar


@njit(cache=True)
def mark_equity_nb(cash, pos, close, t, last_px):
    """Equity at bar t's close: ``cash`` plus each position at its last known price,
    after ``last_px[j]`` takes ``close[t, j]`` (NaN: no new price). The live ledger calls
    this same function, with its one row of marks as ``close`` and ``t = 0`` (a row
    index, not a row view: a view per bar costs the kernel a quarter of its time)."""
    equity = cash
    for j in range(pos.shape[0]):
        c = close[t, j]
        if c == c:
            last_px[j] = c
        if pos[j] != 0.0:
            equity += pos[j] * last_px[j]
    return equity


@njit(cache=True)
def close_act_nb(close, target, pos, last_target, alloc, equity, halted, rebalance_band):
    """Whether one symbol with a bar at this close acts, and the target it acts on.

    A NaN target, or a halted portfolio, means flat (0). It acts when the target changed
    from ``last_target``, or, with a rebalance band, when its weight
    (``pos * close / (equity * alloc)``) drifted more than the band from the target, or
    when the portfolio is halted and the position is open. Returns ``(act, target)``."""
    if target != target or halted:
        target = 0.0
    act = target != last_target
    if not act and rebalance_band > 0.0 and alloc > 0.0 and equity > 0.0:
        weight = pos * close / (equity * alloc)
        act = abs(weight - target) > rebalance_band
    if halted and pos != 0.0:
        act = True
    return act, target


@njit(cache=True)
def close_wants_nb(
    close_t,
    target_t,
    skip,
    pos,
    last_target,
    alloc,
    equity,
    halted,
    rebalance_band,
    lot_size,
    want,
    acted,
):
    """The live ledger's close step before the sizing rule: for each symbol with a bar
    (``close_t[j]`` not NaN) and not skipped, :func:`close_act_nb`; an acting symbol's
    target goes to ``last_target[j]`` and its desired change, whole lots of
    ``target * alloc * equity / close`` minus the position, to ``want[j]`` (NaN where
    it does not act), as :func:`simulate_nb` decides at a close; ``acted[j]`` says
    whether it acts. Returns how many act."""
    n_acted = 0
    for j in range(close_t.shape[0]):
        want[j] = np.nan
        acted[j] = False
        c = close_t[j]
        if c != c or skip[j]:
            continue
        act, tgt = close_act_nb(
            c, target_t[j], pos[j], last_target[j], alloc[j], equity, halted, rebalance_band
        )
        if not act:
            continue
        last_target[j] = tgt
        acted[j] = True
        want[j] = round_lot_nb(tgt * alloc[j] * max(equity, 0.0) / c, lot_size) - pos[j]
        n_acted += 1
    return n_acted


@njit(cache=True)
def _trips_halt(equity, peak_equity, max_drawdown):
    """Equity at or below zero, or a drawdown from the peak of at least max_drawdown."""
    return equity <= 0.0 or (max_drawdown > 0.0 and equity <= peak_equity * (1.0 - max_drawdown))


@njit(cache=True)
def _room(rec, n):
    """``rec`` with space for one more record (doubled when full)."""
    if n < rec.shape[0]:
        return rec
    bigger = np.empty((rec.shape[0] * 2, rec.shape[1]))
    bigger[:n] = rec[:n]
    return bigger


@njit(cache=True)
def _fill(rec, n, signal_bar, fill_bar, j, qty, px, comm, ref, reason):
    rec[n, 0] = signal_bar
    rec[n, 1] = fill_bar
    rec[n, 2] = j
    rec[n, 3] = qty
    rec[n, 4] = px
    rec[n, 5] = comm
    rec[n, 6] = abs(px - ref) * abs(qty)
    rec[n, 7] = reason
    rec[n, 8] = ref
    return n + 1


@njit(cache=True)
def _update_entry(old, new, qty, px, entry_px, peak_px, j):
    """Average entry price and trailing peak of the position after a fill."""
    if new == 0.0:
        entry_px[j] = np.nan
        peak_px[j] = np.nan
    elif old == 0.0 or (old > 0.0) != (new > 0.0):  # opened or flipped
        entry_px[j] = px
        peak_px[j] = px
    elif abs(new) > abs(old):  # added: volume-weighted entry
        entry_px[j] = (entry_px[j] * abs(old) + px * abs(qty)) / abs(new)


@njit(cache=True)
def decide_close_orders_nb(
    want,
    close_t,
    pos,
    cash,
    lot_size,
    comm_code,
    comm_params,
    slip_code,
    slip_params,
    sigma_t,
    adv_t,
    month_vol,
    t,
    pend_qty,
    pend_bar,
    has_pend,
):
    """Turn desired quantity changes at a bar's close into orders (the sizing rule).

    ``want[j]`` is the desired change of symbol j's position (NaN: no order). Sells are
    taken first and their estimated proceeds (at the close, after slippage and fees)
    fund the buys; a buy that opens or adds to a long is capped by that cash, a cover is
    not. The resulting quantities go to ``pend_qty`` (flagged in ``has_pend``).
    The live gateway calls this same function, so it sends what the backtest traded.
    """
    avail = cash
    n_sym = want.shape[0]
    for j in range(n_sym):  # sells (and covers' opposite) first: their proceeds fund buys
        q = want[j]
        if q == q and q < 0.0:
            pend_qty[j] = q
            pend_bar[j] = t
            has_pend[j] = True
            px = slipped_price_nb(
                slip_code, slip_params, close_t[j], -q, -1.0, sigma_t[j], adv_t[j]
            )
            avail += -q * px - commission_nb(comm_code, comm_params, -q, px, month_vol, True)
    for j in range(n_sym):
        q = want[j]
        if q != q or q <= 0.0:
            if q == q and q == 0.0:
                has_pend[j] = False
            continue
        px = slipped_price_nb(slip_code, slip_params, close_t[j], q, 1.0, sigma_t[j], adv_t[j])
        if pos[j] >= 0.0:  # opening or adding to a long needs cash; covering a short does not
            q = min(q, affordable_qty_nb(avail, px, lot_size, comm_code, comm_params, month_vol))
        elif q > -pos[j]:  # cover, then go long with what cash allows
            extra = affordable_qty_nb(avail, px, lot_size, comm_code, comm_params, month_vol)
            q = -pos[j] + min(q + pos[j], extra)
        if q <= 0.0:
            continue
        pend_qty[j] = q
        pend_bar[j] = t
        has_pend[j] = True
        avail -= q * px + commission_nb(comm_code, comm_params, q, px, month_vol, False)
