"""Commission and slippage models, shared by the backtester and the IB stand-in.

Each model is a small frozen dataclass (what configs build and users read) that lowers to
an integer code plus a float64 parameter vector, which the numba functions
:func:`commission_nb` and :func:`slipped_price_nb` evaluate. The backtest kernel and
:mod:`stratvector.ibsim` call the *same* numba functions, so a fill in the stand-in costs
exactly what the backtest charged.

Units: quantities are shares (positive), prices and money in the instrument's currency.
Commissions are never negative; slippage always moves the price against the trader.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np
from numba import njit

# --- model codes (stable: stored in configs' lowered form and used by ibsim) -------------
COMM_NONE = 0
COMM_IBKR_FIXED = 1
COMM_IBKR_TIERED = 2
COMM_PERCENT = 3
COMM_PER_ORDER = 4

SLIP_NONE = 0
SLIP_BPS = 1
SLIP_HALF_SPREAD = 2
SLIP_SQRT_IMPACT = 3

# IBKR tiered US-stock schedule: month-to-date share volume upper bounds and rates.
_TIER_BOUNDS = (300_000.0, 3_000_000.0, 20_000_000.0, 100_000_000.0)
_TIER_RATES = (0.0035, 0.0020, 0.0015, 0.0010, 0.0005)


@njit(cache=True)
def commission_nb(
    code: int, params: np.ndarray, qty: float, price: float, month_volume: float, is_sell: bool
) -> float:
    """Commission of one fill of ``qty`` shares (> 0) at ``price``.

    ``month_volume`` is the account's share volume earlier in the calendar month (tiered
    only); ``is_sell`` adds the regulatory fees charged on sales (tiered only).
    """
    if qty <= 0.0:
        return 0.0
    value = qty * price
    if code == COMM_IBKR_FIXED:
        # params: per_share, minimum, max_pct
        c = max(qty * params[0], params[1])
        return min(c, params[2] * value)
    if code == COMM_IBKR_TIERED:
        # params: r1..r5, b1..b4, minimum, max_pct, clearing/sh, exchange/sh,
        #         passthrough_pct, sec_fee_rate, taf_per_share, taf_max
        rate = params[4]
        for i in range(4):
            if month_volume < params[5 + i]:
                rate = params[i]
                break
        c = max(qty * rate, params[9])
        c = min(c, params[10] * value)
        c += qty * (params[11] + params[12]) + c * params[13]
        if is_sell:
            c += value * params[14] + min(qty * params[15], params[16])
        return c
    if code == COMM_PERCENT:
        return value * params[0]
    if code == COMM_PER_ORDER:
        return params[0]
    return 0.0


@njit(cache=True)
def slipped_price_nb(
    code: int, params: np.ndarray, price: float, qty: float, side: float, sigma: float, adv: float
) -> float:
    """Fill price of a market-style order after slippage.

    ``side`` is +1 for a buy, -1 for a sell. ``sigma`` (per-bar return volatility) and
    ``adv`` (average bar volume) feed the square-root impact model and must be computed
    from bars known before the fill; with ``adv <= 0`` or NaN inputs impact is zero.
    """
    if code == SLIP_BPS:
        return price * (1.0 + side * params[0] * 1e-4)
    if code == SLIP_HALF_SPREAD:
        return price * (1.0 + side * 0.5 * params[0] * 1e-4)
    if code == SLIP_SQRT_IMPACT:
        # params: coefficient k, max impact fraction
        if adv > 0.0 and sigma == sigma and sigma > 0.0:
            impact = min(params[0] * sigma * math.sqrt(qty / adv), params[1])
            return price * (1.0 + side * impact)
        return price
    return price


# --- the friendly layer ------------------------------------------------------------------


@dataclass(frozen=True)
class CostModel:
    """Base of the declarative cost models; subclasses set ``code`` and their fields."""

    code: ClassVar[int] = 0
    name: ClassVar[str] = "none"

    def params(self) -> np.ndarray:
        """The float64 parameter vector the numba function reads, in field order."""
        return np.array([float(getattr(self, f.name)) for f in fields(self)], dtype=np.float64)


@dataclass(frozen=True)
class NoCommission(CostModel):
    """No commission."""

    code: ClassVar[int] = COMM_NONE
    name: ClassVar[str] = "none"

    def params(self) -> np.ndarray:
        return np.zeros(1)


@dataclass(frozen=True)
class IBKRFixed(CostModel):
    """IBKR Pro Fixed, US stocks: USD 0.005/share, min USD 1.00, max 1 % of trade value."""

    code: ClassVar[int] = COMM_IBKR_FIXED
    name: ClassVar[str] = "ibkr_fixed"
    per_share: float = 0.005
    minimum: float = 1.0
    max_pct: float = 0.01


@dataclass(frozen=True)
class IBKRTiered(CostModel):
    """IBKR Pro Tiered, US stocks, by month-to-date share volume.

    USD 0.0035/share up to 300k shares a month, 0.002 to 3M, 0.0015 to 20M, 0.001 to 100M,
    0.0005 above; min USD 0.35, max 1 % of trade value; plus clearing (0.0002/share),
    exchange fee per share (venue-dependent; default 0.0003, a typical remove-liquidity
    rate), FINRA pass-through (0.000175 x commission), and on sales the SEC fee
    (0.0000278 x value) and FINRA TAF (0.000166/share, max 8.30).
    """

    code: ClassVar[int] = COMM_IBKR_TIERED
    name: ClassVar[str] = "ibkr_tiered"
    minimum: float = 0.35
    max_pct: float = 0.01
    clearing_per_share: float = 0.0002
    exchange_per_share: float = 0.0003
    passthrough_pct: float = 0.000175
    sec_fee_rate: float = 0.0000278
    taf_per_share: float = 0.000166
    taf_max: float = 8.30

    def params(self) -> np.ndarray:
        head = [*_TIER_RATES, *_TIER_BOUNDS]
        tail = [float(getattr(self, f.name)) for f in fields(self)]
        return np.array(head + tail, dtype=np.float64)


@dataclass(frozen=True)
class PercentCommission(CostModel):
    """A fraction of the trade value (``rate=0.001`` is 0.1 %)."""

    code: ClassVar[int] = COMM_PERCENT
    name: ClassVar[str] = "percent"
    rate: float = 0.001


@dataclass(frozen=True)
class PerOrderCommission(CostModel):
    """A flat amount per fill."""

    code: ClassVar[int] = COMM_PER_ORDER
    name: ClassVar[str] = "per_order"
    amount: float = 1.0


@dataclass(frozen=True)
class NoSlippage(CostModel):
    """Fills at the reference price."""

    code: ClassVar[int] = SLIP_NONE
    name: ClassVar[str] = "none"

    def params(self) -> np.ndarray:
        return np.zeros(1)


@dataclass(frozen=True)
class BpsSlippage(CostModel):
    """A fixed adverse move of ``bps`` basis points."""

    code: ClassVar[int] = SLIP_BPS
    name: ClassVar[str] = "bps"
    bps: float = 1.0


@dataclass(frozen=True)
class HalfSpreadSlippage(CostModel):
    """Pays half of a quoted spread of ``spread_bps`` basis points."""

    code: ClassVar[int] = SLIP_HALF_SPREAD
    name: ClassVar[str] = "half_spread"
    spread_bps: float = 2.0


@dataclass(frozen=True)
class SqrtImpactSlippage(CostModel):
    """Square-root market impact: ``k * sigma * sqrt(qty / adv)``, capped at ``max_impact``.

    ``sigma`` and ``adv`` are the rolling standard deviation of bar returns and the rolling
    mean volume over ``window`` bars ending at the decision bar (causal).
    """

    code: ClassVar[int] = SLIP_SQRT_IMPACT
    name: ClassVar[str] = "sqrt_impact"
    k: float = 1.0
    max_impact: float = 0.05
    window: int = 20

    def params(self) -> np.ndarray:
        return np.array([self.k, self.max_impact], dtype=np.float64)


COMMISSION_MODELS: dict[str, type[CostModel]] = {
    m.name: m for m in (NoCommission, IBKRFixed, IBKRTiered, PercentCommission, PerOrderCommission)
}
SLIPPAGE_MODELS: dict[str, type[CostModel]] = {
    m.name: m for m in (NoSlippage, BpsSlippage, HalfSpreadSlippage, SqrtImpactSlippage)
}


def commission(
    model: CostModel, qty: float, price: float, month_volume: float = 0.0, is_sell: bool = False
) -> float:
    """Python entry to :func:`commission_nb` for one fill (used by ibsim and tests)."""
    return float(commission_nb(model.code, model.params(), abs(qty), price, month_volume, is_sell))


def slipped_price(
    model: CostModel, price: float, qty: float, side: float, sigma: float = 0.0, adv: float = 0.0
) -> float:
    """Python entry to :func:`slipped_price_nb` for one market-style fill."""
    return float(slipped_price_nb(model.code, model.params(), price, abs(qty), side, sigma, adv))
