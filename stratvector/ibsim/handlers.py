"""Request handlers: one function per client message id, registered in :data:`HANDLERS`.

Each handler reads its fields from a :class:`FieldReader` (which raises
:class:`ProtocolError` on anything malformed), asks the market, broker or account, and
answers on the session. Unknown message ids get error 321; requests before startApi too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pandas as pd

from stratvector.ibsim import messages as m
from stratvector.ibsim import requests as rq
from stratvector.ibsim.broker import NO_SECURITY, WhatIf
from stratvector.ibsim.faults import PACING_TEXT
from stratvector.ibsim.market import (
    QueryError,
    format_bar_time,
    history,
    parse_ib_bar_size,
    parse_ib_timestamp,
)
from stratvector.ibsim.orders import OrderError, SimOrder
from stratvector.ibsim.protocol import FieldReader, ProtocolError
from stratvector.ibsim.session import HistSub, Session

log = logging.getLogger("stratvector.ibsim.handlers")

Handler = Callable[[Session, FieldReader], None]
HANDLERS: dict[int, Handler] = {}


def handles(msg_id: int) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[msg_id] = fn
        return fn

    return register


def dispatch(s: Session, r: FieldReader) -> None:
    """Route one message; raises ProtocolError for a malformed one."""
    msg_id = r.int("message id")
    handler = HANDLERS.get(msg_id)
    if handler is None:
        s.send_error(
            -1,
            321,
            f"Error validating request.-'{msg_id}' : cause - ibsim does not support "
            f"message id {msg_id}",
        )
        return
    if msg_id != rq.START_API and not s.ready:
        s.send_error(-1, 321, f"Error validating request.-'{msg_id}' : cause - startApi first")
        return
    handler(s, r)


def _too_many(s: Session, req_id: int) -> bool:
    if s.subs.count() >= s.ctx.config.limits.max_subscriptions:
        s.send_error(req_id, 101, "Max number of tickers has been reached.")
        return True
    return False


# --- session -----------------------------------------------------------------------------


@handles(rq.START_API)
def start_api(s: Session, r: FieldReader) -> None:
    r.int("version")
    client_id = r.int("clientId")
    s.start_api(client_id)


@handles(rq.REQ_IDS)
def req_ids(s: Session, r: FieldReader) -> None:
    r.int("version")
    r.int("numIds")
    s.send(m.next_valid_id(s.ctx.next_valid_id(s.client_id or 0)))


@handles(rq.REQ_MANAGED_ACCTS)
def req_managed_accts(s: Session, r: FieldReader) -> None:
    s.send(m.managed_accounts(s.ctx.account.account_id))


@handles(rq.REQ_CURRENT_TIME)
def req_current_time(s: Session, r: FieldReader) -> None:
    s.send(m.current_time(int(s.ctx.clock.now().value // 1_000_000_000)))


@handles(rq.REQ_USER_INFO)
def req_user_info(s: Session, r: FieldReader) -> None:
    s.send(m.user_info(r.int("reqId")))


def _ignore(s: Session, r: FieldReader) -> None:
    """Requests that need no answer from a stand-in (log level, news, auto-bind...)."""


for _msg_id in (
    12,
    13,
    14,
    rq.REQ_AUTO_OPEN_ORDERS,
    rq.REQ_MARKET_DATA_TYPE,
    rq.CANCEL_HEAD_TIMESTAMP,
):
    HANDLERS[_msg_id] = _ignore


# --- contracts ---------------------------------------------------------------------------


@handles(rq.REQ_CONTRACT_DETAILS)
def req_contract_details(s: Session, r: FieldReader) -> None:
    req_id, spec = rq.read_contract_details(r, s.version)
    inst = s.ctx.store.lookup(spec)
    if inst is None:
        s.send_error(req_id, 200, NO_SECURITY)
        return
    clock = s.ctx.clock
    hours = clock.sessions.hours_text(clock.now())
    s.send(m.contract_data(s.version, req_id, inst, clock.sessions.zone_id, hours))
    s.send(m.contract_data_end(req_id))


@handles(rq.REQ_MATCHING_SYMBOLS)
def req_matching_symbols(s: Session, r: FieldReader) -> None:
    req_id = r.int("reqId")
    pattern = r.str("pattern").upper()
    found = [i for sym, i in sorted(s.ctx.store.instruments.items()) if sym.startswith(pattern)]
    s.send(m.symbol_samples(s.version, req_id, found[:16]))


@handles(rq.REQ_MARKET_RULE)
def req_market_rule(s: Session, r: FieldReader) -> None:
    """The price bands of a rule some contract names; an unknown id gets no answer, only
    error 321 (the request carries no request id, so the client just times out)."""
    rule_id = r.int("marketRuleId")
    rule = s.ctx.store.market_rule(rule_id)
    if rule is None:
        s.send_error(
            -1, 321, f"Error validating request.-'bR' : cause - unknown market rule id {rule_id}"
        )
        return
    s.send(m.market_rule(rule))


# --- market data -------------------------------------------------------------------------


@handles(rq.REQ_HISTORICAL_DATA)
def req_historical_data(s: Session, r: FieldReader) -> None:
    req = rq.read_historical(r)
    ctx = s.ctx
    inst = ctx.store.lookup(req.contract)
    if inst is None:
        s.send_error(req.req_id, 200, NO_SECURITY)
        return
    if req.keep_up_to_date and req.end.strip():
        s.send_error(
            req.req_id,
            321,
            "Error validating request.-'bP' : cause - End date not supported with live updates",
        )
        return
    if ctx.pacing is not None:
        key = (inst.con_id, req.end, req.duration, req.bar_size, req.what_to_show, req.use_rth)
        reason = ctx.pacing.check((inst.con_id, req.what_to_show), key, _bar_seconds(req))
        if reason:
            s.send_error(req.req_id, 162, f"{PACING_TEXT} ({reason})")
            return
    if req.keep_up_to_date and _too_many(s, req.req_id):
        return
    try:
        bars, size, start, end = history(
            inst, ctx.clock, ctx.store.bar_duration, req.end, req.duration, req.bar_size
        )
    except QueryError as exc:
        s.send_error(req.req_id, exc.code, exc.message)
        return
    rows = [
        m.bar_row(format_bar_time(t, size, req.format_date), o, h, lo, c, v)
        for t, o, h, lo, c, v in zip(
            bars.index,
            bars["open"].to_numpy(),
            bars["high"].to_numpy(),
            bars["low"].to_numpy(),
            bars["close"].to_numpy(),
            bars["volume"].to_numpy(),
            strict=True,
        )
    ]
    fmt = "%Y%m%d %H:%M:%S"
    s.send(m.historical_data(req.req_id, start.strftime(fmt), end.strftime(fmt), rows))
    if req.keep_up_to_date:
        same = size.months == 0 and pd.Timedelta(seconds=size.seconds) == ctx.store.bar_duration
        s.subs.hist[req.req_id] = HistSub(inst, size, same, req.format_date)


def _bar_seconds(req: rq.HistoricalRequest) -> float | None:
    """The request's bar size in seconds for the pacing rules (None: not a bar size)."""
    try:
        return parse_ib_bar_size(req.bar_size).approx().total_seconds()
    except QueryError:
        return None


@handles(rq.CANCEL_HISTORICAL_DATA)
def cancel_historical_data(s: Session, r: FieldReader) -> None:
    r.int("version")
    s.subs.hist.pop(r.int("reqId"), None)


@handles(rq.REQ_HEAD_TIMESTAMP)
def req_head_timestamp(s: Session, r: FieldReader) -> None:
    req_id, spec, fmt = rq.read_head_timestamp(r)
    inst = s.ctx.store.lookup(spec)
    if inst is None:
        s.send_error(req_id, 200, NO_SECURITY)
        return
    first = inst.time(0)
    text = str(first.value // 1_000_000_000) if fmt == 2 else first.strftime("%Y%m%d-%H:%M:%S")
    s.send(m.head_timestamp(req_id, text))


@handles(rq.REQ_REAL_TIME_BARS)
def req_real_time_bars(s: Session, r: FieldReader) -> None:
    req = rq.read_real_time_bars(r)
    inst = s.ctx.store.lookup(req.contract)
    if inst is None:
        s.send_error(req.req_id, 200, NO_SECURITY)
        return
    if not _too_many(s, req.req_id):
        s.subs.rt_bars[req.req_id] = inst


@handles(rq.CANCEL_REAL_TIME_BARS)
def cancel_real_time_bars(s: Session, r: FieldReader) -> None:
    r.int("version")
    s.subs.rt_bars.pop(r.int("reqId"), None)


@handles(rq.REQ_MKT_DATA)
def req_mkt_data(s: Session, r: FieldReader) -> None:
    req = rq.read_mkt_data(r)
    inst = s.ctx.store.lookup(req.contract)
    if inst is None:
        s.send_error(req.req_id, 200, NO_SECURITY)
        return
    if not req.snapshot and _too_many(s, req.req_id):
        return
    s.send(m.market_data_type(req.req_id, 1))
    n = s.ctx.clock.closed_count(inst)
    if n:
        s.send_ticks(req.req_id, inst, n - 1)
    if req.snapshot:
        s.send(m.tick_snapshot_end(req.req_id))
    else:
        s.subs.mkt_data[req.req_id] = inst


@handles(rq.CANCEL_MKT_DATA)
def cancel_mkt_data(s: Session, r: FieldReader) -> None:
    r.int("version")
    s.subs.mkt_data.pop(r.int("reqId"), None)


# --- orders ------------------------------------------------------------------------------


@handles(rq.PLACE_ORDER)
def place_order(s: Session, r: FieldReader) -> None:
    req = rq.read_place_order(r, s.version)
    client_id = s.client_id or 0
    if req.what_if:
        answer = s.ctx.broker.what_if(client_id, req)
        if isinstance(answer, OrderError):
            s.send_error(answer.order_id, answer.code, answer.text)
        elif isinstance(answer, WhatIf):
            s.send(m.open_order(s.version, answer.order, what_if=answer.state))
        return
    s.ctx.broker.place(client_id, req)


@handles(rq.CANCEL_ORDER)
def cancel_order(s: Session, r: FieldReader) -> None:
    r.int("version")
    order_id = r.int("orderId")
    s.ctx.broker.cancel(s.client_id or 0, order_id)


@handles(rq.REQ_GLOBAL_CANCEL)
def req_global_cancel(s: Session, r: FieldReader) -> None:
    s.ctx.broker.global_cancel()


def _visible(s: Session, o: SimOrder, all_clients: bool) -> bool:
    return all_clients or o.client_id == s.client_id or s.client_id == s.ctx.hub.master_client_id


@handles(rq.REQ_OPEN_ORDERS)
def req_open_orders(s: Session, r: FieldReader) -> None:
    for o in s.ctx.book.working():
        if _visible(s, o, all_clients=False):
            s.send_order_state(o)
    s.send(m.open_order_end())


@handles(rq.REQ_ALL_OPEN_ORDERS)
def req_all_open_orders(s: Session, r: FieldReader) -> None:
    for o in s.ctx.book.working():
        s.send_order_state(o)
    s.send(m.open_order_end())


@handles(rq.REQ_COMPLETED_ORDERS)
def req_completed_orders(s: Session, r: FieldReader) -> None:
    r.bool("apiOnly")
    for o in s.ctx.book.completed():
        s.send(m.completed_order(s.version, o))
    s.send(m.completed_orders_end())


@handles(rq.REQ_EXECUTIONS)
def req_executions(s: Session, r: FieldReader) -> None:
    req_id, f = rq.read_executions(r)
    since = None
    if f.time.strip():
        try:
            since = parse_ib_timestamp(f.time)
        except QueryError as exc:
            s.send_error(req_id, 321, exc.message)
            return
    master = s.ctx.hub.master_client_id
    visible = None if (master is not None and s.client_id == master) else s.client_id
    for ex in s.ctx.account.matching_executions(f, visible, since):
        s.send(m.exec_details(s.version, req_id, ex))
        s.send(m.commission_report(ex))
    s.send(m.exec_details_end(req_id))


# --- account -----------------------------------------------------------------------------


@handles(rq.REQ_POSITIONS)
def req_positions(s: Session, r: FieldReader) -> None:
    s.subs.positions = True
    acct = s.ctx.account
    for p in acct.positions():
        s.send(m.position(acct.account_id, p))
    s.send(m.position_end())


@handles(rq.CANCEL_POSITIONS)
def cancel_positions(s: Session, r: FieldReader) -> None:
    s.subs.positions = False


@handles(rq.REQ_ACCOUNT_UPDATES)
def req_account_updates(s: Session, r: FieldReader) -> None:
    r.int("version")
    subscribe = r.bool("subscribe")
    account = r.str("acctCode")
    if not subscribe:
        s.subs.account = False
        return
    if account and account != s.ctx.account.account_id:
        s.send_error(-1, 321, f"Error validating request.-'bA' : cause - unknown account {account}")
        return
    s.subs.account = True
    s.send_account_snapshot()


@handles(rq.REQ_ACCOUNT_UPDATES_MULTI)
def req_account_updates_multi(s: Session, r: FieldReader) -> None:
    r.int("version")
    req_id = r.int("reqId")
    account = r.str("account")
    model = r.str("modelCode")
    r.bool("ledgerAndNLV")
    acct = s.ctx.account
    if account and account not in (acct.account_id, "All"):
        s.send_error(
            req_id, 321, f"Error validating request.-'bM' : cause - unknown account {account}"
        )
        return
    for tag, value, cur in acct.values():
        s.send(m.account_update_multi(req_id, acct.account_id, model, tag, value, cur))
    s.send(m.account_update_multi_end(req_id))
    if not _too_many(s, req_id):
        s.subs.account_multi.add(req_id)


@handles(rq.CANCEL_ACCOUNT_UPDATES_MULTI)
def cancel_account_updates_multi(s: Session, r: FieldReader) -> None:
    r.int("version")
    s.subs.account_multi.discard(r.int("reqId"))


@handles(rq.REQ_ACCOUNT_SUMMARY)
def req_account_summary(s: Session, r: FieldReader) -> None:
    r.int("version")
    req_id = r.int("reqId")
    r.str("groupName")
    tags = {t.strip() for t in r.str("tags").split(",") if t.strip()}
    acct = s.ctx.account
    seen: set[str] = set()
    for tag, value, cur in acct.values():
        if tag in tags and tag not in seen and cur != "BASE":
            seen.add(tag)
            s.send(m.account_summary(req_id, acct.account_id, tag, value, cur))
    s.send(m.account_summary_end(req_id))


@handles(rq.CANCEL_ACCOUNT_SUMMARY)
def cancel_account_summary(s: Session, r: FieldReader) -> None:
    r.int("version")
    r.int("reqId")


__all__ = ["HANDLERS", "ProtocolError", "dispatch"]
