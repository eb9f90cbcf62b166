"""An independent, slow, plain-Python backtester used only to check the numba kernel.

It implements the written conventions (see the kernel's docstring) bar by bar with
Python floats, in an event style unlike the kernel's array style, and shares no code
with it: costs are re-derived from their published definitions here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class RefSettings:
    init_cash: float = 100_000.0
    alloc: float = 1.0
    lot: float = 1.0  # 0 = fractional
    size_on_fill: bool = False
    commission: tuple = (
        "none",
    )  # ("fixed", per_share, min, max_pct) | ("percent", r) | ("per_order", a) | ("tiered",)
    slippage: tuple = ("none",)  # ("bps", b) | ("half_spread", s)
    stop_loss: float = 0.0
    take_profit: float = 0.0
    trailing_stop: float = 0.0
    max_drawdown: float = 0.0


def ref_commission(
    model: tuple, qty: float, price: float, month_volume: float, sell: bool
) -> float:
    if qty <= 0:
        return 0.0
    kind = model[0]
    value = qty * price
    if kind == "fixed":
        _, per_share, minimum, max_pct = model
        return min(max(per_share * qty, minimum), max_pct * value)
    if kind == "percent":
        return model[1] * value
    if kind == "per_order":
        return model[1]
    if kind == "tiered":
        if month_volume < 300_000:
            rate = 0.0035
        elif month_volume < 3_000_000:
            rate = 0.002
        elif month_volume < 20_000_000:
            rate = 0.0015
        elif month_volume < 100_000_000:
            rate = 0.001
        else:
            rate = 0.0005
        base = min(max(rate * qty, 0.35), 0.01 * value)
        fee = base + qty * (0.0002 + 0.0003) + base * 0.000175
        if sell:
            fee += value * 0.0000278 + min(qty * 0.000166, 8.30)
        return fee
    return 0.0


def ref_slip(model: tuple, price: float, side: int) -> float:
    if model[0] == "bps":
        return price * (1 + side * model[1] / 10_000)
    if model[0] == "half_spread":
        return price * (1 + side * model[1] / 20_000)
    return price


def ref_lots(qty: float, lot: float) -> float:
    if lot <= 0:
        return qty
    n = int(qty / lot + (1e-9 if qty >= 0 else -1e-9))
    return n * lot


def ref_affordable(cash: float, price: float, s: RefSettings, month_volume: float) -> float:
    """Largest quantity whose cost fits in cash: closed form or a search over lots."""
    if cash <= 0:
        return 0.0

    def cost(q: float) -> float:
        return q * price + ref_commission(s.commission, q, price, month_volume, False)

    if s.lot <= 0:
        kind = s.commission[0]
        if kind == "percent":
            return cash / (price * (1 + s.commission[1]))
        if kind == "per_order":
            return max((cash - s.commission[1]) / price, 0.0)
        if kind == "none":
            return cash / price
        raise ValueError("fractional sizing with a nonlinear commission is not referenced")
    lo, hi = 0, int(cash / price / s.lot) + 1
    while lo < hi:  # largest n with cost(n * lot) <= cash
        mid = (lo + hi + 1) // 2
        if cost(mid * s.lot) <= cash * (1 + 1e-12):
            lo = mid
        else:
            hi = mid - 1
    return lo * s.lot


def reference_run(bars: list[dict], targets: list[list[float]], s: RefSettings):
    """``bars[t][sym]`` is a dict of open/high/low/close or None; targets[t][sym].

    Returns (equity per bar, list of orders as tuples
    (signal_bar, fill_bar, sym, qty, price, commission, reason)).
    """
    n_sym = len(targets[0])
    cash = s.init_cash
    pos = [0.0] * n_sym
    last = [math.nan] * n_sym
    acted = [0.0] * n_sym
    pending: dict[int, tuple[int, float]] = {}  # sym -> (signal bar, qty or target)
    entry = [math.nan] * n_sym
    peak = [math.nan] * n_sym
    orders = []
    equity_curve = []
    month_vol = 0.0
    peak_eq = s.init_cash
    halted = False

    def fill(sig, t, j, qty, px, reason):
        nonlocal cash, month_vol
        c = ref_commission(s.commission, abs(qty), px, month_vol, qty < 0)
        orders.append((sig, t, j, qty, px, c, reason))
        cash -= qty * px + c
        month_vol += abs(qty)
        old = pos[j]
        new = old + qty
        if abs(new) <= 1e-9:
            new = 0.0
        pos[j] = new
        if new == 0:
            entry[j] = peak[j] = math.nan
        elif old == 0 or (old > 0) != (new > 0):
            entry[j] = peak[j] = px
        elif abs(new) > abs(old):
            entry[j] = (entry[j] * abs(old) + px * abs(qty)) / abs(new)

    months = [b.get("_month", 0) for b in bars]
    cur_month = None
    for t, row in enumerate(bars):
        if months[t] != cur_month:
            cur_month, month_vol = months[t], 0.0
        # open
        if s.size_on_fill:
            eq_open = cash + sum(
                pos[j] * (row[j]["open"] if row[j] else last[j]) for j in range(n_sym) if pos[j]
            )
        todo = []
        for j, (sig, val) in list(pending.items()):
            if row[j] is None:
                continue
            if s.size_on_fill:
                qty = ref_lots(val * s.alloc * eq_open / row[j]["open"], s.lot) - pos[j]
            else:
                qty = val
            todo.append((j, sig, qty))
        todo.sort()  # convention: sells first, then by symbol order
        for sells in (True, False):
            for j, sig, qty in todo:
                if (qty < 0) != sells:
                    continue
                del pending[j]
                if abs(qty) <= 1e-9 * max(1.0, abs(pos[j])):
                    continue
                side = 1 if qty > 0 else -1
                px = ref_slip(s.slippage, row[j]["open"], side)
                if s.size_on_fill and qty > 0 and pos[j] >= 0:
                    qty = min(qty, ref_affordable(cash, px, s, month_vol))
                    if qty <= 0:
                        continue
                fill(sig, t, j, qty, px, "halt" if halted else "signal")
        # intrabar exits
        for j in range(n_sym):
            b = row[j]
            if b is None or pos[j] == 0:
                continue
            long = pos[j] > 0
            stop, reason = None, None
            if s.stop_loss:
                stop = entry[j] * (1 - s.stop_loss) if long else entry[j] * (1 + s.stop_loss)
                reason = "stop_loss"
            if s.trailing_stop:
                tr = peak[j] * (1 - s.trailing_stop) if long else peak[j] * (1 + s.trailing_stop)
                if stop is None or (tr > stop if long else tr < stop):
                    stop, reason = tr, "trailing_stop"
            px = None
            if stop is not None:
                if long and b["open"] <= stop:
                    px = b["open"]
                elif long and b["low"] <= stop:
                    px = stop
                elif not long and b["open"] >= stop:
                    px = b["open"]
                elif not long and b["high"] >= stop:
                    px = stop
                if px is not None:
                    px = ref_slip(s.slippage, px, -1 if long else 1)
            if px is None and s.take_profit:
                lim = entry[j] * (1 + s.take_profit) if long else entry[j] * (1 - s.take_profit)
                if long and b["open"] >= lim:
                    px = b["open"]
                elif long and b["high"] >= lim:
                    px = lim
                elif not long and b["open"] <= lim:
                    px = b["open"]
                elif not long and b["low"] <= lim:
                    px = lim
                reason = "take_profit"
            if px is not None:
                fill(t, t, j, -pos[j], px, reason)
                pending.pop(j, None)
            elif s.trailing_stop:
                peak[j] = max(peak[j], b["high"]) if long else min(peak[j], b["low"])
        # close
        for j in range(n_sym):
            if row[j] is not None:
                last[j] = row[j]["close"]
        equity = cash + sum(pos[j] * last[j] for j in range(n_sym) if pos[j])
        equity_curve.append(equity)
        peak_eq = max(peak_eq, equity)
        if not halted and (
            equity <= 0 or (s.max_drawdown and equity <= peak_eq * (1 - s.max_drawdown))
        ):
            halted = True
        wants = {}
        for j in range(n_sym):
            if row[j] is None:
                continue
            tgt = targets[t][j]
            if tgt != tgt or halted:
                tgt = 0.0
            if tgt == acted[j] and not (halted and pos[j]):
                continue
            acted[j] = tgt
            if s.size_on_fill:
                pending[j] = (t, tgt)
            else:
                wants[j] = (
                    ref_lots(tgt * s.alloc * max(equity, 0.0) / row[j]["close"], s.lot) - pos[j]
                )
        if not s.size_on_fill:
            avail = cash
            for j, q in wants.items():
                if q < 0:
                    pending[j] = (t, q)
                    px = ref_slip(s.slippage, row[j]["close"], -1)
                    avail += -q * px - ref_commission(s.commission, -q, px, month_vol, True)
            for j, q in wants.items():
                if q == 0:
                    pending.pop(j, None)
                if q <= 0:
                    continue
                px = ref_slip(s.slippage, row[j]["close"], 1)
                if pos[j] >= 0:
                    q = min(q, ref_affordable(avail, px, s, month_vol))
                elif q > -pos[j]:
                    q = -pos[j] + min(q + pos[j], ref_affordable(avail, px, s, month_vol))
                if q <= 0:
                    continue
                pending[j] = (t, q)
                avail -= q * px + ref_commission(s.commission, q, px, month_vol, False)
    return equity_curve, orders
