"""Risk (VaR/CVaR, stress) and drift reports written by the scheduled jobs.

Units follow the project conventions: ``var`` and ``cvar`` are positive losses as a
fraction of equity at ``confidence`` over ``horizon_days``; ``var_amount`` and
``cvar_amount`` the same in account currency. A drift ``score`` is in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from stratvector.store._types import jsonable, opt_utc, to_utc, utc_now
from stratvector.store.models import DriftReport, RiskReport

RISK_KINDS = ("var", "stress")


@dataclass(frozen=True, slots=True)
class RiskReportRecord:
    id: int
    as_of: datetime
    kind: str
    method: str
    strategy: str | None
    confidence: float | None
    horizon_days: float | None
    var: float | None
    cvar: float | None
    var_amount: float | None
    cvar_amount: float | None
    portfolio_value: float | None
    breached: bool
    details: dict[str, Any] | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DriftReportRecord:
    id: int
    as_of: datetime
    strategy: str
    score: float
    alert: bool
    window_start: datetime | None
    window_end: datetime | None
    detectors: dict[str, Any] | None
    details: dict[str, Any] | None
    created_at: datetime


def _risk(r: RiskReport) -> RiskReportRecord:
    return RiskReportRecord(
        r.id,
        r.as_of,
        r.kind,
        r.method,
        r.strategy,
        r.confidence,
        r.horizon_days,
        r.var,
        r.cvar,
        r.var_amount,
        r.cvar_amount,
        r.portfolio_value,
        r.breached,
        r.details,
        r.created_at,
    )


def _drift(d: DriftReport) -> DriftReportRecord:
    return DriftReportRecord(
        d.id,
        d.as_of,
        d.strategy,
        d.score,
        d.alert,
        d.window_start,
        d.window_end,
        d.detectors,
        d.details,
        d.created_at,
    )


def _num(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, not {value!r}")
    return value


class Reports:
    """Risk and drift reports. Get it as ``journal.reports``."""

    def __init__(self, journal: Any) -> None:
        self._journal = journal

    def record_risk_report(
        self,
        method: str,
        *,
        kind: str = "var",
        var: float | None = None,
        cvar: float | None = None,
        confidence: float | None = None,
        horizon_days: float | None = None,
        var_amount: float | None = None,
        cvar_amount: float | None = None,
        portfolio_value: float | None = None,
        breached: bool = False,
        strategy: str | None = None,
        details: Mapping[str, Any] | None = None,
        as_of: datetime | None = None,
    ) -> RiskReportRecord:
        """Store a VaR/CVaR estimate (``kind="var"``, ``method`` historical, parametric,
        monte_carlo) or a stress result (``kind="stress"``, ``method`` the scenario)."""
        if kind not in RISK_KINDS:
            raise ValueError(f"risk report kind must be one of {RISK_KINDS}, not {kind!r}")
        if confidence is not None and not 0 < confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), not {confidence!r}")
        row = RiskReport(
            as_of=opt_utc(as_of, "as_of") or utc_now(),
            kind=kind,
            method=method,
            strategy=strategy,
            confidence=_num(confidence, "confidence"),
            horizon_days=_num(horizon_days, "horizon_days"),
            var=_num(var, "var"),
            cvar=_num(cvar, "cvar"),
            var_amount=_num(var_amount, "var_amount"),
            cvar_amount=_num(cvar_amount, "cvar_amount"),
            portfolio_value=_num(portfolio_value, "portfolio_value"),
            breached=bool(breached),
            details=jsonable(details),
            created_at=utc_now(),
        )
        with self._journal.write() as s:
            s.add(row)
            s.flush()
            return _risk(row)

    def list_risk_reports(
        self,
        *,
        kind: str | None = None,
        method: str | None = None,
        strategy: str | None = None,
        since: datetime | None = None,
        limit: int | None = 100,
    ) -> list[RiskReportRecord]:
        """Risk reports newest first (by ``as_of``)."""
        with self._journal.read() as s:
            stmt = select(RiskReport).order_by(RiskReport.as_of.desc(), RiskReport.id.desc())
            if kind is not None:
                stmt = stmt.where(RiskReport.kind == kind)
            if method is not None:
                stmt = stmt.where(RiskReport.method == method)
            if strategy is not None:
                stmt = stmt.where(RiskReport.strategy == strategy)
            if since is not None:
                stmt = stmt.where(RiskReport.as_of >= to_utc(since, "since"))
            if limit is not None:
                stmt = stmt.limit(limit)
            return [_risk(r) for r in s.scalars(stmt)]

    def record_drift_report(
        self,
        strategy: str,
        score: float,
        *,
        alert: bool = False,
        detectors: Mapping[str, Any] | None = None,
        window_start: datetime | None = None,
        window_end: datetime | None = None,
        details: Mapping[str, Any] | None = None,
        as_of: datetime | None = None,
    ) -> DriftReportRecord:
        """Store a strategy's drift score (in [0, 1]) and per-detector results."""
        value = _num(score, "score")
        if value is None or not 0.0 <= value <= 1.0:
            raise ValueError(f"drift score must be in [0, 1], not {score!r}")
        row = DriftReport(
            as_of=opt_utc(as_of, "as_of") or utc_now(),
            strategy=strategy,
            score=value,
            alert=bool(alert),
            window_start=opt_utc(window_start, "window_start"),
            window_end=opt_utc(window_end, "window_end"),
            detectors=jsonable(detectors),
            details=jsonable(details),
            created_at=utc_now(),
        )
        with self._journal.write() as s:
            s.add(row)
            s.flush()
            return _drift(row)

    def list_drift_reports(
        self,
        *,
        strategy: str | None = None,
        since: datetime | None = None,
        limit: int | None = 100,
    ) -> list[DriftReportRecord]:
        """Drift reports newest first (by ``as_of``)."""
        with self._journal.read() as s:
            stmt = select(DriftReport).order_by(DriftReport.as_of.desc(), DriftReport.id.desc())
            if strategy is not None:
                stmt = stmt.where(DriftReport.strategy == strategy)
            if since is not None:
                stmt = stmt.where(DriftReport.as_of >= to_utc(since, "since"))
            if limit is not None:
                stmt = stmt.limit(limit)
            return [_drift(d) for d in s.scalars(stmt)]

    def latest_drift_scores(self) -> dict[str, DriftReportRecord]:
        """The newest drift report of each strategy (to restore the gauges at start)."""
        with self._journal.read() as s:
            newest = (
                select(DriftReport.strategy, func.max(DriftReport.id).label("id"))
                .group_by(DriftReport.strategy)
                .subquery()
            )
            stmt = select(DriftReport).join(newest, newest.c.id == DriftReport.id)
            return {d.strategy: _drift(d) for d in s.scalars(stmt)}
