"""Live sizing that is the backtest's, number for number.

Each strategy trades a virtual cash account of ``[backtest] initial_capital`` inside the
IB account. :class:`StrategyLedger` rebuilds that account from the strategy's own fills
(journaled, recovered from IB after reconnects) exactly as the kernel
(:func:`stratvector.backtest.nb.simulate_nb`) books them, and :meth:`StrategyLedger.decide`
runs the kernel's bar-close step for every symbol whose bar closed at that time with the
functions the backtest's kernel calls: the mark to market
(:func:`~stratvector.backtest.nb.mark_equity_nb`), whether each symbol acts
(:func:`~stratvector.backtest.nb.close_act_nb`, through
:func:`~stratvector.backtest.nb.close_wants_nb`) and the sizing rule
(:func:`~stratvector.backtest.nb.decide_close_orders_nb`). So the gateway sends what the
backtest traded, and a bar's sizing is compiled code, not a Python loop per symbol.

Why the journal's fills and not IB's account values: several strategies share one IB
account, and IB's cash and net liquidation are rounded, delayed and include everything
else in the account. Cash from fills is exact and per strategy.

Exactness: floating-point sums depend on their order, so fills are applied in the
kernel's order, not in arrival order: by fill time, then signal sells, signal buys, then
protective exits, each by the strategy's symbol order; ``cash -= qty * price +
commission`` is the kernel's expression. A fill whose commission report has not arrived
when it is applied is charged the configured model's estimate, corrected when the
report comes.

Kernel rules reproduced at a bar close (see the kernel's docstring): equity is cash plus
positions at their last close; the peak equity and the drawdown halt (``[risk]
max_drawdown``: flatten and stop); an order only when the target changed (NaN = flat) or,
with a rebalance band, the weight drifted past it; whole lots of ``target x allocation x
equity / close``; sells fund buys; buys capped by cash.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from stratvector.backtest.costs import commission as commission_of
from stratvector.backtest.nb import (
    close_wants_nb,
    decide_close_orders_nb,
    mark_equity_nb,
    round_lot_nb,
)
from stratvector.backtest.settings import BacktestSettings

PHASE_SELL, PHASE_BUY, PHASE_EXIT = 0, 1, 2
_EPS = 1e-9


@dataclass(slots=True)
class _Fill:
    exec_id: str
    j: int
    qty: float  # signed
    price: float
    commission: float | None
    time: int  # ns, the bar the fill belongs to
    phase: int
    seq: int
    applied: float | None = None  # the commission charged when applied


@dataclass(frozen=True)
class Decision:
    """The outcome of one bar close: ``orders`` maps symbol index to signed quantity."""

    time: int
    equity: float
    orders: dict[int, float]
    targets: dict[int, float]
    halted_now: bool = False
    skipped: tuple[int, ...] = ()


@dataclass
class StrategyLedger:
    """A strategy's virtual account, fed by fills, deciding like the kernel."""

    symbols: list[str]
    settings: BacktestSettings
    cash: float = field(init=False)
    pos: np.ndarray = field(init=False)
    last_px: np.ndarray = field(init=False)
    last_target: np.ndarray = field(init=False)
    entry_px: np.ndarray = field(init=False)
    peak_px: np.ndarray = field(init=False)
    peak_equity: float = field(init=False)
    halted: bool = field(init=False, default=False)
    equity: float = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.symbols)
        s = self.settings
        self.index = {sym: j for j, sym in enumerate(self.symbols)}
        self.cash = float(s.init_cash)
        self.equity = float(s.init_cash)
        self.pos = np.zeros(n)
        self.last_px = np.full(n, np.nan)
        self.last_target = np.zeros(n)
        self.entry_px = np.full(n, np.nan)
        self.peak_px = np.full(n, np.nan)
        self.peak_equity = float(s.init_cash)
        self.alloc = np.full(n, s.position_size)
        self._want = np.full(n, np.nan)  # the close step's desired changes (scratch)
        self._acted = np.zeros(n, dtype=np.bool_)  # and which symbols act (scratch)
        self._zeros = np.zeros(n)  # no impact inputs
        self._comm_code = s.commission.code
        self._comm_params = s.commission.params()
        self._slip_code = s.slippage.code
        self._slip_params = s.slippage.params()
        self._fills: dict[str, _Fill] = {}
        self._pending: list[_Fill] = []
        self._month_vol: dict[int, float] = {}
        self._seq = 0
        self.applied_fills = 0

    def prime(self) -> None:
        """Load the sizing kernels now, not at the first decision.

        The first numba kernel a process calls loads numba's code generator and its
        registries (~55 MB and ~0.2 s, once per process); the trader primes its ledgers
        at its first sync, so that cost falls before its memory release
        (:mod:`stratvector.memory`) instead of into the first bar's decision. The calls use
        this ledger's own argument types (empty arrays), so they load the cached
        specializations :meth:`decide` and :meth:`settle` use, and change no state.
        """
        s = self.settings
        none = np.zeros(0)
        no = np.zeros(0, dtype=np.bool_)
        round_lot_nb(0.0, s.lot_size)
        mark_equity_nb(self.cash, none, np.zeros((1, 0)), 0, none)
        close_wants_nb(
            none,
            none,
            no,
            none,
            none,
            none,
            0.0,
            False,
            float(s.rebalance_band),
            float(s.lot_size),
            none,
            no,
        )
        decide_close_orders_nb(
            none,
            none,
            none,
            self.cash,
            s.lot_size,
            self._comm_code,
            self._comm_params,
            self._slip_code,
            self._slip_params,
            none,
            none,
            0.0,
            0,
            none,
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.bool_),
        )
        commission_of(s.commission, 0.0, 0.0, 0.0, False)

    # ------------------------------------------------------------------ fills

    def add_fill(
        self,
        exec_id: str,
        symbol: str,
        qty: float,
        price: float,
        commission: float | None,
        time_ns: int,
        exit_leg: bool = False,
    ) -> bool:
        """Take one execution (signed ``qty``); False if already known or not ours."""
        j = self.index.get(symbol)
        if j is None or exec_id in self._fills or qty == 0:
            return False
        phase = PHASE_EXIT if exit_leg else (PHASE_SELL if qty < 0 else PHASE_BUY)
        self._seq += 1
        f = _Fill(exec_id, j, float(qty), float(price), commission, int(time_ns), phase, self._seq)
        self._fills[exec_id] = f
        self._pending.append(f)
        return True

    def set_commission(self, exec_id: str, commission: float) -> None:
        """The commission report of a fill; corrects cash if an estimate was charged."""
        f = self._fills.get(exec_id)
        if f is None or not math.isfinite(commission):
            return
        f.commission = float(commission)
        if f.applied is not None and f.applied != f.commission:
            self.cash += f.applied - f.commission
            f.applied = f.commission

    def settle(self, upto: int) -> int:
        """Apply the fills up to time ``upto`` (ns) in the kernel's order; returns how many."""
        if not self._pending:
            return 0
        due = [f for f in self._pending if f.time <= upto]
        if not due:
            return 0
        self._pending = [f for f in self._pending if f.time > upto]
        due.sort(key=lambda f: (f.time, f.phase, f.j, f.seq))
        for f in due:
            comm = f.commission
            if comm is None:
                comm = commission_of(
                    self.settings.commission,
                    abs(f.qty),
                    f.price,
                    self._month_vol.get(_month(f.time), 0.0),
                    f.qty < 0,
                )
            f.applied = comm
            self.cash -= f.qty * f.price + comm
            key = _month(f.time)
            self._month_vol[key] = self._month_vol.get(key, 0.0) + abs(f.qty)
            old = self.pos[f.j]
            new = old + f.qty
            if abs(new) <= _EPS:
                new = 0.0
            self.pos[f.j] = new
            self._update_entry(f.j, old, new, f.qty, f.price)
            self.applied_fills += 1
        return len(due)

    def _update_entry(self, j: int, old: float, new: float, qty: float, px: float) -> None:
        if new == 0.0:
            self.entry_px[j] = np.nan
            self.peak_px[j] = np.nan
        elif old == 0.0 or (old > 0.0) != (new > 0.0):
            self.entry_px[j] = px
            self.peak_px[j] = px
        elif abs(new) > abs(old):
            self.entry_px[j] = (self.entry_px[j] * abs(old) + px * abs(qty)) / abs(new)

    def observe(self, high: np.ndarray, low: np.ndarray) -> None:
        """A bar's range after its fills: the trailing peak moves as the kernel's does
        (only for positions still open, i.e. the bar did not trigger their exit)."""
        if self.settings.trailing_stop <= 0.0:
            return
        for j in range(len(self.symbols)):
            p = self.pos[j]
            if p == 0.0 or high[j] != high[j]:
                continue
            self.peak_px[j] = (
                max(self.peak_px[j], high[j]) if p > 0.0 else min(self.peak_px[j], low[j])
            )

    def restore_targets(self, targets: dict[str, float]) -> None:
        """The last acted targets (from journaled intents) after a restart."""
        for sym, tgt in targets.items():
            j = self.index.get(sym)
            if j is not None and tgt is not None and math.isfinite(tgt):
                self.last_target[j] = float(tgt)

    # ------------------------------------------------------------------ the bar close

    def decide(
        self,
        t: int,
        close: np.ndarray,
        mark: np.ndarray,
        target: np.ndarray,
        sigma: np.ndarray | None = None,
        adv: np.ndarray | None = None,
        skip: np.ndarray | None = None,
    ) -> Decision:
        """The kernel's close step at bar time ``t`` (ns).

        ``close[j]`` is symbol j's close at ``t`` (NaN: no bar, no decision); ``mark[j]``
        its latest close at or before ``t`` (for equity); ``target[j]`` the strategy's
        target at ``t``; ``skip[j]`` True leaves j undecided this bar (an order of an
        earlier bar is still working). Fills up to ``t`` must be settled first.
        """
        s = self.settings
        equity = mark_equity_nb(self.cash, self.pos, mark.reshape(1, -1), 0, self.last_px)
        self.equity = equity
        if equity > self.peak_equity:
            self.peak_equity = equity
        halted_now = False
        if not self.halted and (
            equity <= 0.0
            or (s.max_drawdown > 0.0 and equity <= self.peak_equity * (1.0 - s.max_drawdown))
        ):
            self.halted = True
            halted_now = True
        n = len(self.symbols)
        if skip is None:
            skip = np.zeros(n, dtype=np.bool_)
        want = self._want
        acting = close_wants_nb(
            close,
            target,
            skip,
            self.pos,
            self.last_target,
            self.alloc,
            equity,
            self.halted,
            float(s.rebalance_band),
            float(s.lot_size),
            want,
            self._acted,
        )
        acted = {j: float(self.last_target[j]) for j in np.flatnonzero(self._acted).tolist()}
        skipped = np.flatnonzero(skip & (close == close)).tolist()
        orders: dict[int, float] = {}
        if acting:
            pend_qty = np.zeros(n)
            pend_bar = np.full(n, -1, dtype=np.int64)
            has_pend = np.zeros(n, dtype=np.bool_)
            zeros = self._zeros
            decide_close_orders_nb(
                want,
                np.where(np.isnan(close), self.last_px, close),
                self.pos,
                self.cash,
                s.lot_size,
                self._comm_code,
                self._comm_params,
                self._slip_code,
                self._slip_params,
                zeros if sigma is None else sigma,
                zeros if adv is None else adv,
                self._month_vol.get(_month(t), 0.0),
                0,
                pend_qty,
                pend_bar,
                has_pend,
            )
            orders = {j: float(pend_qty[j]) for j in np.flatnonzero(has_pend).tolist()}
        return Decision(t, equity, orders, acted, halted_now, tuple(skipped))

    def position(self, symbol: str) -> float:
        return float(self.pos[self.index[symbol]])

    def positions(self) -> dict[str, float]:
        return {s: float(self.pos[j]) for j, s in enumerate(self.symbols) if self.pos[j] != 0.0}


@functools.lru_cache(maxsize=64)
def _month(t_ns: int) -> int:
    """A month counter of a time in ns (year * 12 + month), like the kernel's month ids
    (cached: a bar's fills and its decision share their time)."""
    d = np.datetime64(int(t_ns), "ns").astype("datetime64[M]")
    return int(d.astype(np.int64))
