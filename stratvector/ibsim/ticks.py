"""Market rules: which order prices IB accepts, per price band.

IB describes a contract's valid prices with *market rules*: contract details list one
rule id per valid exchange (``marketRuleIds``, in the order of ``validExchanges``) and
``reqMarketRule(id)`` answers the rule as price bands ``(lowEdge, increment)``. A price
lies in the band with the highest ``lowEdge`` at or below it and is valid when it is a
multiple of that band's increment (the grid is anchored at zero, so a band's low edge is
normally on its own grid). ``minTick`` in contract details is one number and says
nothing about the bands: US stocks report 0.01 while their rule allows 0.0001 below $1;
tiered exchanges report the smallest increment, which IB refuses (error 110) for a price
in a coarser band.

:class:`MarketRule` is the stand-in's rule: configured once (:class:`IBSimConfig`
``market_rule``), reported in contract details and by reqMarketRule, and used to check
every limit, stop and trailing-stop price (:mod:`stratvector.ibsim.order_checks`). Pure
values, no I/O.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from stratvector.errors import ConfigError

#: How far (in increments) a price may be from the grid and still count as on it: TWS
#: clients send prices as decimal text, so only float noise is forgiven.
ON_GRID_TOLERANCE = 1e-6


@dataclass(frozen=True)
class MarketRule:
    """One market rule: ``bands`` are ``(lowEdge, increment)`` pairs, low edges strictly
    increasing from 0, increments finite and positive. Invalid bands raise ConfigError."""

    rule_id: int
    bands: tuple[tuple[float, float], ...]
    _edges: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        bands = tuple((float(lo), float(inc)) for lo, inc in self.bands)
        object.__setattr__(self, "bands", bands)
        if self.rule_id < 0:
            raise ConfigError(f"market rule id must be >= 0, not {self.rule_id}")
        if not bands:
            raise ConfigError("a market rule needs at least one band (lowEdge, increment)")
        if bands[0][0] != 0.0:
            raise ConfigError(
                f"market rule {self.rule_id}: the first band must start at 0, not {bands[0][0]}"
            )
        for (lo, inc), nxt in zip(bands, (*bands[1:], None), strict=True):
            if not (math.isfinite(inc) and inc > 0):
                raise ConfigError(
                    f"market rule {self.rule_id}: increment {inc} at {lo} must be finite and > 0"
                )
            if nxt is not None and not (math.isfinite(nxt[0]) and nxt[0] > lo):
                raise ConfigError(
                    f"market rule {self.rule_id}: low edges must increase ({lo} then {nxt[0]})"
                )
        object.__setattr__(self, "_edges", tuple(lo for lo, _ in bands))

    def increment_at(self, price: float) -> float:
        """The increment of the band ``price`` lies in (the first band below 0)."""
        i = bisect.bisect_right(self._edges, price)
        return self.bands[max(i - 1, 0)][1]

    def conforms(self, price: float) -> bool:
        """True if ``price`` is a multiple of the increment of its band (up to the noise of
        decimal text, :data:`ON_GRID_TOLERANCE` of an increment). Non-finite prices are
        left to the order checks."""
        if not math.isfinite(price):
            return True
        n = price / self.increment_at(price)
        return abs(n - round(n)) <= ON_GRID_TOLERANCE

    @property
    def smallest(self) -> float:
        return min(inc for _, inc in self.bands)

    @classmethod
    def parse(cls, text: str, rule_id: int) -> MarketRule:
        """A rule from ``"EDGE:INCREMENT,..."`` (e.g. ``"0:0.001,10:0.005,50:0.01"``)."""
        bands = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            lo, colon, inc = part.partition(":")
            if not colon:
                raise ConfigError(
                    f"market rule band {part!r} must look like EDGE:INCREMENT (e.g. 10:0.005)"
                )
            try:
                bands.append((float(lo), float(inc)))
            except ValueError as exc:
                raise ConfigError(f"market rule band {part!r}: not two numbers") from exc
        return cls(rule_id, tuple(bands))

    def text(self) -> str:
        """The rule in :meth:`parse`'s format."""
        return ",".join(f"{lo:g}:{inc:g}" for lo, inc in self.bands)


#: IB's rule for US stocks (ibsim's default): 0.0001 below $1, 0.01 from $1. Contract
#: details report it under id 26 with minTick 0.01, as IB does for US stocks.
US_STOCK_RULE = MarketRule(26, ((0.0, 0.0001), (1.0, 0.01)))
