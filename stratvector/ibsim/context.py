"""The references a session needs, gathered in one value (no logic lives here).

Built by :meth:`IBSim.start` once the bars are loaded; kept across a simulated Gateway
restart, which is how the account, orders and executions survive it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stratvector.ibsim.account import Account
    from stratvector.ibsim.broker import Broker
    from stratvector.ibsim.config import IBSimConfig
    from stratvector.ibsim.faults import FaultState, PacingGuard
    from stratvector.ibsim.hub import Hub
    from stratvector.ibsim.market import BarStore, SimClock
    from stratvector.ibsim.orders import OrderBook
    from stratvector.ibsim.transcript import Transcript


@dataclass
class SimContext:
    config: IBSimConfig
    store: BarStore
    clock: SimClock
    book: OrderBook
    account: Account
    broker: Broker
    faults: FaultState
    pacing: PacingGuard | None
    hub: Hub
    transcript: Transcript
    next_ids: dict[int, int] = field(default_factory=dict)

    def next_valid_id(self, client_id: int) -> int:
        """The next order id a client may use (kept per client id across reconnects)."""
        nid = max(self.next_ids.get(client_id, 1), self.book.max_order_id(client_id) + 1)
        self.next_ids[client_id] = nid
        return nid
