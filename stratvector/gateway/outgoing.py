"""What a planned order becomes: its IB order, its bracket children and their intents.

Pure construction, no I/O: :func:`build` turns an
:class:`~stratvector.gateway.runner.OrderPlan` into the ``Order`` sent to IB, the
protective children it carries (:class:`~stratvector.gateway.exits.ExitSpec`) and the
journal :class:`~stratvector.store.Intent` of each, which
:class:`~stratvector.gateway.execution.Executor` commits before anything is sent.

Order types: market by default; ``limit`` sends a limit at the sizing close plus
(buys) or minus (sells) ``limit_offset_bps``, rounded with the contract's increment at
that price away from the offset (:func:`limit_price`: never paying more than the offset
allows; across a band edge, as :func:`~stratvector.gateway.exits.round_price` does).
Protective legs are sent as their :class:`~stratvector.gateway.exits.ExitSpec` builds
them, rounded with the same instrument.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ib_async import Order

from stratvector.gateway.contracts import Instrument
from stratvector.gateway.exits import DEFAULT_TICK, ExitSpec, Tick, round_price
from stratvector.gateway.runner import OrderPlan
from stratvector.store import Intent, make_order_ref

Child = tuple[str, str, Order, ExitSpec]  # (ref, leg, IB order, the exits it protects)


@dataclass
class Outgoing:
    """A plan made ready to send: its IB order, bracket children and journal intents."""

    plan: OrderPlan
    ref: str
    order: Order
    children: list[Child]
    intents: list[Intent]


# Protective exits live as long as the position, not the session: a DAY stop would
# expire at the close and leave a position held overnight unprotected (the backtest's
# stops never expire). The strategy order itself keeps ``[gateway] time_in_force``.
EXIT_TIF = "GTC"


def build(
    plan: OrderPlan,
    ref: str,
    inst: Instrument,
    *,
    order_type: str,
    limit_offset_bps: float,
    tif: str,
    account: str,
) -> Outgoing:
    """The IB order of ``plan`` (under ``ref``), its protective children and all their
    intents. ``order_type`` is the configured ``"market"`` or ``"limit"`` (strategy
    orders only); ``account`` is IB's account id, ``""`` before IB named it."""
    side = plan.side
    qty = abs(plan.quantity)
    ib_type, limit = "MKT", None
    if order_type == "limit" and plan.leg is None:
        ib_type = "LMT"
        limit = limit_price(plan.ref_price, side, limit_offset_bps, inst)
    journaled_account = account or None
    intents = [
        Intent(
            ref,
            plan.strategy,
            plan.symbol,
            plan.bar_time,
            side,
            qty,
            ib_type,
            limit_price=limit,
            time_in_force=tif,
            account=journaled_account,
            target=plan.target,
            detail={"ref_price": plan.ref_price, "leg": plan.leg},
        )
    ]
    order = new_order(
        action=side,
        totalQuantity=qty,
        orderType=ib_type,
        tif=tif,
        orderRef=ref,
        account=account,
    )
    if limit is not None:
        order.lmtPrice = limit
    children: list[Child] = []
    spec = plan.exits if plan.leg is None else None
    for leg in spec.legs() if spec is not None else ():
        cref = make_order_ref(plan.strategy, plan.symbol, plan.bar_time, leg)
        child, lmt, stp = spec.order(leg, cref, EXIT_TIF, account, inst)
        intents.append(
            Intent(
                cref,
                plan.strategy,
                plan.symbol,
                plan.bar_time,
                child.action,
                abs(spec.quantity),
                child.orderType,
                limit_price=lmt,
                stop_price=stp,
                time_in_force=EXIT_TIF,
                account=journaled_account,
                detail={"parent": ref, "exits": _spec_dict(spec)},
            )
        )
        children.append((cref, leg, child, spec))
    return Outgoing(plan, ref, order, children, intents)


def new_order(**values: Any) -> Order:
    """``Order(**values)`` in about half the time: a copy of a default order's fields,
    fresh values from the fields' own factories (lists, the soft-dollar tier), then
    ``values``. ib_async's ``Order`` has ~140 fields, all set one by one by its
    ``__init__``, once per order between a decision and its send. Equal to
    ``Order(**values)`` (a test compares them); should a later ib_async give ``Order``
    a ``__post_init__``, its own constructor is used."""
    if _ORDER_INIT_HOOK:
        return Order(**values)
    for name in values:
        if name not in _ORDER_DEFAULTS:
            raise TypeError(f"Order has no field {name!r}")
    order = object.__new__(Order)
    fields = order.__dict__
    fields.update(_ORDER_DEFAULTS)
    for name, factory in _ORDER_FACTORIES:
        fields[name] = factory()
    fields.update(values)
    return order


_ORDER_DEFAULTS: dict[str, Any] = dict(Order().__dict__)
_ORDER_FACTORIES = tuple(
    (f.name, f.default_factory)
    for f in dataclasses.fields(Order)
    if f.default_factory is not dataclasses.MISSING
)
_ORDER_INIT_HOOK = hasattr(Order, "__post_init__")


def limit_price(ref: float, side: str, offset_bps: float, tick: Tick) -> float:
    """The limit of a marketable limit order: ``ref`` moved ``offset_bps`` against us,
    rounded with ``tick`` (a constant increment, or the instrument's increment at the
    price) toward ``ref``: a buy never pays more than the offset allows, a sell never
    takes less. A constant ``tick <= 0`` means one cent."""
    if isinstance(tick, float | int) and not tick > 0:
        tick = DEFAULT_TICK
    if side == "BUY":
        return round_price(ref * (1.0 + offset_bps * 1e-4), tick, up=False)
    return round_price(ref * (1.0 - offset_bps * 1e-4), tick, up=True)


def _spec_dict(spec: ExitSpec) -> dict[str, Any]:
    """The exits as journaled with a child's intent (rebuilt by a resend)."""
    return {k: getattr(spec, k) for k in spec.__dataclass_fields__}
