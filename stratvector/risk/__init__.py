"""Risk: pre-trade limits and the kill switch.

- :mod:`stratvector.risk.limits` -- :class:`RiskChecker`, the pre-trade and account
  checks. Pure: no I/O, no clock.
- :mod:`stratvector.risk.values` -- what the checker takes and returns:
  :class:`RiskLimits` (and :func:`limits_from_mapping`, its configuration parser), the
  values it judges (:class:`OrderProposal`, :class:`AccountState`) and returns
  (:class:`Decision`, :class:`Breach`). Also re-exported from
  :mod:`stratvector.risk.limits`.
- :mod:`stratvector.risk.killswitch` -- :class:`KillSwitch`, the halt persisted in the
  journal. Imported on first use, so ``import stratvector.risk`` stays light (the
  journal pulls in SQLAlchemy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stratvector.risk.limits import (
    LIMIT_NAMES,
    AccountState,
    Breach,
    Decision,
    OrderProposal,
    RiskChecker,
    RiskLimits,
    limits_from_mapping,
    opened_quantity,
)

if TYPE_CHECKING:
    from stratvector.risk.killswitch import KillSwitch

__all__ = [
    "LIMIT_NAMES",
    "AccountState",
    "Breach",
    "Decision",
    "KillSwitch",
    "OrderProposal",
    "RiskChecker",
    "RiskLimits",
    "limits_from_mapping",
    "opened_quantity",
]


def __getattr__(name: str) -> Any:
    if name == "KillSwitch":
        from stratvector.risk.killswitch import KillSwitch

        return KillSwitch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
