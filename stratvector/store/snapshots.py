"""Position and account snapshots (the ``journal snapshots`` job and reconciliation).

A position snapshot is a header (time, source, account) with any number of lines; an
empty snapshot records "flat". ``source`` says where the positions came from: ``ib``
(IB's ``positions()``/portfolio) or ``journal`` (derived from fills, see
:meth:`Snapshots.snapshot_journal_positions`). Comparing the two over time is how drift
between the broker and the journal shows up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from stratvector.store._types import jsonable, opt_utc, to_utc, utc_now
from stratvector.store.models import AccountSnapshot, PositionSnapshot, PositionSnapshotLine

_LINE_FIELDS = (
    "symbol",
    "quantity",
    "account",
    "strategy",
    "con_id",
    "avg_cost",
    "market_price",
    "market_value",
    "unrealized_pnl",
    "realized_pnl",
    "currency",
)


@dataclass(frozen=True, slots=True)
class PositionLine:
    symbol: str
    quantity: float
    account: str | None = None
    strategy: str | None = None
    con_id: int | None = None
    avg_cost: float | None = None
    market_price: float | None = None
    market_value: float | None = None
    unrealized_pnl: float | None = None
    realized_pnl: float | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class PositionSnapshotRecord:
    id: int
    taken_at: datetime
    source: str
    account: str | None
    lines: tuple[PositionLine, ...]


@dataclass(frozen=True, slots=True)
class AccountSnapshotRecord:
    id: int
    taken_at: datetime
    account: str
    currency: str | None
    net_liquidation: float | None
    total_cash: float | None
    buying_power: float | None
    gross_position_value: float | None
    maintenance_margin: float | None
    unrealized_pnl: float | None
    realized_pnl: float | None
    tags: dict[str, Any] | None


def _pos_record(p: PositionSnapshot) -> PositionSnapshotRecord:
    lines = tuple(PositionLine(**{f: getattr(line, f) for f in _LINE_FIELDS}) for line in p.lines)
    return PositionSnapshotRecord(p.id, p.taken_at, p.source, p.account, lines)


def _acct_record(a: AccountSnapshot) -> AccountSnapshotRecord:
    return AccountSnapshotRecord(
        a.id,
        a.taken_at,
        a.account,
        a.currency,
        a.net_liquidation,
        a.total_cash,
        a.buying_power,
        a.gross_position_value,
        a.maintenance_margin,
        a.unrealized_pnl,
        a.realized_pnl,
        a.tags,
    )


def _line(item: PositionLine | Mapping[str, Any], index: int) -> PositionSnapshotLine:
    data = (
        {f: getattr(item, f) for f in _LINE_FIELDS}
        if isinstance(item, PositionLine)
        else dict(item)
    )
    unknown = set(data) - set(_LINE_FIELDS)
    if unknown:
        raise ValueError(
            f"position line {index}: unknown fields {sorted(unknown)}; "
            f"known: {', '.join(_LINE_FIELDS)}"
        )
    if not data.get("symbol") or data.get("quantity") is None:
        raise ValueError(f"position line {index}: symbol and quantity are required")
    clean = jsonable(data)  # numpy scalars -> Python numbers, NaN -> None
    return PositionSnapshotLine(**clean)


class Snapshots:
    """Position and account snapshots. Get it as ``journal.snapshots``."""

    def __init__(self, journal: Any) -> None:
        self._journal = journal

    def record_position_snapshot(
        self,
        positions: Iterable[PositionLine | Mapping[str, Any]],
        *,
        taken_at: datetime | None = None,
        source: str = "ib",
        account: str | None = None,
    ) -> PositionSnapshotRecord:
        """Store one snapshot (all lines in one transaction). Lines are
        :class:`PositionLine` or mappings with its field names."""
        lines = [_line(item, i) for i, item in enumerate(positions)]
        snap = PositionSnapshot(
            taken_at=opt_utc(taken_at, "taken_at") or utc_now(),
            source=source,
            account=account,
            lines=lines,
        )
        with self._journal.write() as s:
            s.add(snap)
            s.flush()
            return _pos_record(snap)

    def snapshot_journal_positions(
        self, *, taken_at: datetime | None = None
    ) -> PositionSnapshotRecord:
        """Snapshot the positions derived from the journal's fills (``source="journal"``)."""
        positions = self._journal.fills.positions()
        lines = [
            PositionLine(
                symbol=p.symbol,
                quantity=p.quantity,
                strategy=p.strategy,
                avg_cost=p.avg_cost,
                realized_pnl=p.realized_pnl,
            )
            for p in positions
        ]
        return self.record_position_snapshot(lines, taken_at=taken_at, source="journal")

    def latest_position_snapshot(
        self, source: str = "ib", account: str | None = None
    ) -> PositionSnapshotRecord | None:
        with self._journal.read() as s:
            stmt = (
                select(PositionSnapshot)
                .where(PositionSnapshot.source == source)
                .options(selectinload(PositionSnapshot.lines))
                .order_by(PositionSnapshot.taken_at.desc(), PositionSnapshot.id.desc())
                .limit(1)
            )
            if account is not None:
                stmt = stmt.where(PositionSnapshot.account == account)
            snap = s.scalars(stmt).first()
            return _pos_record(snap) if snap else None

    def position_snapshots(
        self,
        *,
        source: str | None = None,
        since: datetime | None = None,
        limit: int | None = 100,
    ) -> list[PositionSnapshotRecord]:
        """Snapshots newest first, with their lines."""
        with self._journal.read() as s:
            stmt = (
                select(PositionSnapshot)
                .options(selectinload(PositionSnapshot.lines))
                .order_by(PositionSnapshot.taken_at.desc(), PositionSnapshot.id.desc())
            )
            if source is not None:
                stmt = stmt.where(PositionSnapshot.source == source)
            if since is not None:
                stmt = stmt.where(PositionSnapshot.taken_at >= to_utc(since, "since"))
            if limit is not None:
                stmt = stmt.limit(limit)
            return [_pos_record(p) for p in s.scalars(stmt)]

    def record_account_snapshot(
        self,
        account: str,
        *,
        net_liquidation: float | None = None,
        total_cash: float | None = None,
        buying_power: float | None = None,
        gross_position_value: float | None = None,
        maintenance_margin: float | None = None,
        unrealized_pnl: float | None = None,
        realized_pnl: float | None = None,
        currency: str | None = None,
        tags: Mapping[str, Any] | None = None,
        taken_at: datetime | None = None,
    ) -> AccountSnapshotRecord:
        """Store the account's values; ``tags`` keeps IB's raw account values."""
        numbers = jsonable(
            {
                "net_liquidation": net_liquidation,
                "total_cash": total_cash,
                "buying_power": buying_power,
                "gross_position_value": gross_position_value,
                "maintenance_margin": maintenance_margin,
                "unrealized_pnl": unrealized_pnl,
                "realized_pnl": realized_pnl,
            }
        )
        row = AccountSnapshot(
            taken_at=opt_utc(taken_at, "taken_at") or utc_now(),
            account=account,
            currency=currency,
            tags=jsonable(dict(tags)) if tags is not None else None,
            **{k: (None if v is None else float(v)) for k, v in numbers.items()},
        )
        with self._journal.write() as s:
            s.add(row)
            s.flush()
            return _acct_record(row)

    def latest_account_snapshot(self, account: str | None = None) -> AccountSnapshotRecord | None:
        with self._journal.read() as s:
            stmt = select(AccountSnapshot).order_by(
                AccountSnapshot.taken_at.desc(), AccountSnapshot.id.desc()
            )
            if account is not None:
                stmt = stmt.where(AccountSnapshot.account == account)
            row = s.scalars(stmt.limit(1)).first()
            return _acct_record(row) if row else None

    def account_history(
        self,
        account: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[AccountSnapshotRecord]:
        """Account snapshots oldest first (the live equity curve)."""
        with self._journal.read() as s:
            stmt = select(AccountSnapshot).order_by(AccountSnapshot.taken_at, AccountSnapshot.id)
            if account is not None:
                stmt = stmt.where(AccountSnapshot.account == account)
            if since is not None:
                stmt = stmt.where(AccountSnapshot.taken_at >= to_utc(since, "since"))
            if until is not None:
                stmt = stmt.where(AccountSnapshot.taken_at < to_utc(until, "until"))
            return [_acct_record(a) for a in s.scalars(stmt)]
