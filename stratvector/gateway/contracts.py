"""Symbols to IB contracts: built without I/O, qualified after every (re)connect.

Each configured symbol is a US-style stock (``STK`` on ``exchange``, in ``currency``).
:meth:`ContractBook.qualify` asks IB for the contract details of every symbol at once and
raises one :class:`ContractError` naming every symbol IB does not know or finds ambiguous,
before anything is traded. A contract id that changes between connects is logged (IB
does that after corporate actions); positions are matched by contract id and symbol.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

from ib_async import IB, Contract, Stock

from stratvector.gateway.errors import ContractError

log = logging.getLogger("stratvector.gateway.contracts")


@dataclass(frozen=True)
class Instrument:
    """A qualified contract and what order pricing needs from its details."""

    symbol: str
    contract: Contract
    con_id: int
    min_tick: float


class ContractBook:
    """The contracts of all traded symbols, keyed by symbol and by contract id."""

    def __init__(self, symbols: Iterable[str], exchange: str = "SMART", currency: str = "USD"):
        self.symbols = list(dict.fromkeys(symbols))
        self.exchange = exchange
        self.currency = currency
        self._by_symbol: dict[str, Instrument] = {}
        self._by_con_id: dict[int, str] = {}

    def spec(self, symbol: str) -> Contract:
        return Stock(symbol, self.exchange, self.currency)

    async def qualify(self, ib: IB, timeout: float) -> None:
        """Fetch details for every symbol; raise :class:`ContractError` for unknown ones."""

        async def one(symbol: str) -> tuple[str, list]:
            details = await asyncio.wait_for(ib.reqContractDetailsAsync(self.spec(symbol)), timeout)
            return symbol, list(details or [])

        results = await asyncio.gather(*(one(s) for s in self.symbols))
        unknown = [s for s, d in results if not d]
        ambiguous = [s for s, d in results if len(d) > 1]
        if unknown or ambiguous:
            parts = []
            if unknown:
                parts.append(f"unknown to IB: {', '.join(unknown)}")
            if ambiguous:
                parts.append(f"ambiguous: {', '.join(ambiguous)}")
            raise ContractError(
                f"cannot trade {'; '.join(parts)} (as STK on {self.exchange} in "
                f"{self.currency}); check [data] symbols"
            )
        for symbol, details in results:
            d = details[0]
            c = d.contract
            old = self._by_symbol.get(symbol)
            if old is not None and old.con_id != c.conId:
                log.warning("contract id of %s changed: %d -> %d", symbol, old.con_id, c.conId)
            tick = float(d.minTick) if d.minTick and math.isfinite(d.minTick) else 0.01
            self._by_symbol[symbol] = Instrument(symbol, c, int(c.conId), tick)
            self._by_con_id[int(c.conId)] = symbol

    @property
    def qualified(self) -> bool:
        return len(self._by_symbol) == len(self.symbols)

    def get(self, symbol: str) -> Instrument:
        try:
            return self._by_symbol[symbol]
        except KeyError:
            raise ContractError(f"{symbol} is not qualified yet (not connected?)") from None

    def symbol_for(self, contract: Contract) -> str | None:
        """The configured symbol of ``contract`` (by contract id, else by symbol)."""
        sym = self._by_con_id.get(int(contract.conId or 0))
        if sym is not None:
            return sym
        return contract.symbol if contract.symbol in self._by_symbol else None
