"""The simulated account: cash, positions, P&L and the executions IB keeps for the day.

Accounting follows IB's conventions:

- A position's average cost includes the commissions of the fills that opened it
  (buy 100 at 10.00 paying 1.00 -> average cost 10.01; a short's cost is reduced by them).
- A fill that reduces a position realizes ``(price - avg_cost) * qty * sign - commission``;
  that figure is the ``realizedPNL`` of its commission report. A fill that only opens
  reports IB's unset value there. A fill that flips a position splits its commission
  pro rata between the closing and the opening part.
- Cash moves by the traded value and the commission; NetLiquidation is cash plus the
  positions marked at the last close.

All money is in the account currency. The account is driven by the broker and holds no
reference to orders or sessions.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import pandas as pd

from stratvector.ibsim.market import Instrument, format_ib_time
from stratvector.ibsim.requests import ExecFilter


@dataclass(frozen=True)
class ExecutionRecord:
    """One execution, as execDetails and the commission report describe it."""

    exec_id: str
    order_id: int
    client_id: int
    perm_id: int
    inst: Instrument
    time: pd.Timestamp
    account: str
    exchange: str
    side: str  # "BOT" or "SLD"
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    order_ref: str
    commission: float
    realized_pnl: float | None
    currency: str
    liquidity: int = 2  # 1 added, 2 removed liquidity

    @property
    def time_text(self) -> str:
        return format_ib_time(self.time)


@dataclass
class _Holding:
    inst: Instrument
    qty: float = 0.0
    avg_cost: float = 0.0
    realized: float = 0.0


@dataclass(frozen=True)
class PositionView:
    """A position with its mark, as position and updatePortfolio messages carry it."""

    inst: Instrument
    qty: float
    avg_cost: float
    market_price: float
    market_value: float
    unrealized_pnl: float
    realized_pnl: float


class Account:
    """One IB account. ``max_executions`` bounds the execution history kept."""

    def __init__(
        self, account_id: str, cash: float, currency: str = "USD", max_executions: int = 100_000
    ) -> None:
        self.account_id = account_id
        self.currency = currency
        self.cash = float(cash)
        self.realized = 0.0
        self._holdings: dict[int, _Holding] = {}
        self._marks: dict[int, float] = {}
        self._month_volume: dict[tuple[int, int], float] = {}
        self.executions: deque[ExecutionRecord] = deque(maxlen=max_executions)
        self._exec_seq = 0

    # --- updates ------------------------------------------------------------------------

    def month_volume(self, when: pd.Timestamp) -> float:
        """Shares traded earlier in ``when``'s calendar month (IBKR tiered pricing)."""
        return self._month_volume.get((when.year, when.month), 0.0)

    def apply_fill(
        self,
        inst: Instrument,
        side: float,
        qty: float,
        price: float,
        commission: float,
        when: pd.Timestamp,
    ) -> float | None:
        """Book a fill of ``qty`` shares (> 0) at ``price``; ``side`` +1 buy, -1 sell.

        Returns the realized P&L of the fill, or ``None`` if it only opened or added.
        """
        h = self._holdings.setdefault(inst.con_id, _Holding(inst))
        key = (when.year, when.month)
        self._month_volume[key] = self._month_volume.get(key, 0.0) + qty
        self.cash -= side * qty * price + commission
        closing = 0.0
        if h.qty * side < 0:
            closing = min(qty, abs(h.qty))
        opening = qty - closing
        realized: float | None = None
        if closing > 0:
            comm_close = commission * closing / qty
            realized = (price - h.avg_cost) * closing * (-side) - comm_close
            h.realized += realized
            self.realized += realized
            h.qty += side * closing
            if abs(h.qty) < 1e-9:
                h.qty, h.avg_cost = 0.0, 0.0
        if opening > 0:
            comm_open = commission * opening / qty
            cost = h.avg_cost * abs(h.qty) + price * opening + side * comm_open
            h.qty += side * opening
            h.avg_cost = cost / abs(h.qty)
        self._marks.setdefault(inst.con_id, price)
        return realized

    def mark(self, inst: Instrument, price: float) -> None:
        self._marks[inst.con_id] = float(price)

    def record(self, ex: ExecutionRecord) -> None:
        self.executions.append(ex)

    def next_exec_id(self, perm_id: int) -> str:
        self._exec_seq += 1
        return f"{perm_id:08x}.{self._exec_seq:08x}.01.01"

    # --- views --------------------------------------------------------------------------

    def position(self, inst: Instrument) -> PositionView:
        h = self._holdings.get(inst.con_id) or _Holding(inst)
        mark = self._marks.get(inst.con_id, h.avg_cost)
        return PositionView(
            inst=inst,
            qty=h.qty,
            avg_cost=h.avg_cost,
            market_price=mark,
            market_value=h.qty * mark,
            unrealized_pnl=h.qty * (mark - h.avg_cost) if h.qty else 0.0,
            realized_pnl=h.realized,
        )

    def positions(self, include_flat: bool = False) -> list[PositionView]:
        """Positions in contract-id order; flat ones only if ``include_flat`` (IB keeps
        sending a position that went flat during the session once, with quantity 0)."""
        return [
            self.position(h.inst)
            for _, h in sorted(self._holdings.items())
            if include_flat or h.qty != 0
        ]

    def values(self) -> list[tuple[str, str, str]]:
        """``(tag, value, currency)`` triples for updateAccountValue and account summary."""
        views = self.positions()
        stock = sum(v.market_value for v in views)
        gross = sum(abs(v.market_value) for v in views)
        unrealized = sum(v.unrealized_pnl for v in views)
        net_liq = self.cash + stock
        margin = 0.25 * gross
        c = self.currency

        def money(x: float) -> str:
            return f"{x:.2f}"

        rows = [
            ("AccountCode", self.account_id, ""),
            ("AccountType", "INDIVIDUAL", ""),
            ("AccountReady", "true", ""),
            ("Currency", c, c),
            ("NetLiquidation", money(net_liq), c),
            ("TotalCashValue", money(self.cash), c),
            ("SettledCash", money(self.cash), c),
            ("CashBalance", money(self.cash), c),
            ("CashBalance", money(self.cash), "BASE"),
            ("EquityWithLoanValue", money(net_liq), c),
            ("GrossPositionValue", money(gross), c),
            ("StockMarketValue", money(stock), c),
            ("UnrealizedPnL", money(unrealized), c),
            ("RealizedPnL", money(self.realized), c),
            ("InitMarginReq", money(margin), c),
            ("MaintMarginReq", money(margin), c),
            ("AvailableFunds", money(net_liq - margin), c),
            ("ExcessLiquidity", money(net_liq - margin), c),
            ("BuyingPower", money(4.0 * (net_liq - margin)), c),
            ("Leverage-S", f"{(gross / net_liq) if net_liq else 0.0:.4f}", ""),
        ]
        return rows

    def matching_executions(
        self, f: ExecFilter, client_id: int | None, since: pd.Timestamp | None
    ) -> list[ExecutionRecord]:
        """Executions passing ``f``; ``client_id`` None means every client's."""
        out = []
        for ex in self.executions:
            if client_id is not None and ex.client_id != client_id:
                continue
            if f.client_id and ex.client_id != f.client_id:
                continue
            if f.account and ex.account != f.account:
                continue
            if f.symbol and ex.inst.symbol != f.symbol:
                continue
            if f.sec_type and f.sec_type != "STK":
                continue
            if f.exchange and ex.exchange != f.exchange:
                continue
            if f.side and _side_code(f.side) != ex.side:
                continue
            if since is not None and ex.time < since:
                continue
            out.append(ex)
        return out


def _side_code(side: str) -> str:
    s = side.upper()
    return {"BUY": "BOT", "SELL": "SLD"}.get(s, s)
