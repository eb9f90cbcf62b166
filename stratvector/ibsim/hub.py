"""Who is connected, and which session hears about what.

Order messages go to the session of the client that placed the order (and to the master
client, if one is configured); position and account updates go to every session that
subscribed to them; bar updates to the sessions holding the subscription. A client that is
not connected simply misses the live messages; the state stays in the account and the
order book for it to query after reconnecting, as with IB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stratvector.ibsim.account import ExecutionRecord, PositionView
    from stratvector.ibsim.market import Instrument
    from stratvector.ibsim.orders import Event
    from stratvector.ibsim.session import Session


class Hub:
    """Registry of live sessions and the fan-out of server events to them."""

    def __init__(self, master_client_id: int | None = None) -> None:
        self.master_client_id = master_client_id
        self.sessions: set[Session] = set()
        self._by_client: dict[int, Session] = {}

    # --- registry ------------------------------------------------------------------------

    def add(self, session: Session) -> None:
        self.sessions.add(session)

    def claim(self, session: Session, client_id: int) -> bool:
        """Bind ``client_id`` to ``session``; False if another live session holds it."""
        holder = self._by_client.get(client_id)
        if holder is not None and holder is not session and not holder.closed:
            return False
        self._by_client[client_id] = session
        return True

    def remove(self, session: Session) -> None:
        self.sessions.discard(session)
        cid = session.client_id
        if cid is not None and self._by_client.get(cid) is session:
            del self._by_client[cid]

    def live(self) -> list[Session]:
        return [s for s in self.sessions if s.ready and not s.closed]

    def for_client(self, client_id: int) -> list[Session]:
        out = []
        s = self._by_client.get(client_id)
        if s is not None and s.ready and not s.closed:
            out.append(s)
        if self.master_client_id is not None and self.master_client_id != client_id:
            m = self._by_client.get(self.master_client_id)
            if m is not None and m.ready and not m.closed:
                out.append(m)
        return out

    # --- fan-out -------------------------------------------------------------------------

    def order_event(self, client_id: int, event: Event, record: ExecutionRecord | None) -> None:
        for s in self.for_client(client_id):
            s.on_order_event(event, record)

    def positions_changed(self, views: list[PositionView]) -> None:
        for s in self.live():
            s.on_positions(views)

    def account_changed(self, changed: list[PositionView]) -> None:
        for s in self.live():
            s.on_account(changed)

    def bars_closed(self, revealed: list[tuple[Instrument, int]]) -> None:
        for s in self.live():
            s.on_bars(revealed)

    def bars_opened(self, opened: list[tuple[Instrument, int]]) -> None:
        for s in self.live():
            s.on_bars_opened(opened)

    def revise(self, inst: Instrument, i: int, changes: dict[str, float]) -> int:
        return sum(s.revise(inst, i, changes) for s in self.live())

    def notice(self, code: int, text: str) -> None:
        """An error/notice with reqId -1 to every live session (1100, 1101, 1102...)."""
        for s in self.live():
            s.send_error(-1, code, text)
