"""Staged orders (``transmit=False``) through the real client, as IB treats them: held
and unanswered until an order of their bracket arrives with ``transmit=True``; a refused
transmitting child leaves them staged; a cancel closes a staged order (``Cancelled``,
then error 202). The gateway relies on this to clean up refused brackets
(``stratvector.gateway.order_book``)."""

from __future__ import annotations

from ib_async import IB, LimitOrder, Order, Stock

from ._support import ErrorLog, client, running, sync, wait_until

PS = "PendingSubmit"


async def _qualified(ib: IB):
    [c] = await ib.qualifyContractsAsync(Stock("SYN", "SMART", "USD"))
    return c


def _bracket(ib: IB, tp_price: float) -> tuple[Order, Order, Order]:
    """A market entry with a stop and a take-profit, placed the gateway's way."""
    parent = Order(
        orderId=ib.client.getReqId(),
        action="BUY",
        totalQuantity=10,
        orderType="MKT",
        transmit=False,
    )
    stop = Order(
        orderId=ib.client.getReqId(),
        action="SELL",
        totalQuantity=10,
        orderType="TRAIL",
        trailingPercent=2.0,
        parentId=parent.orderId,
        transmit=False,
    )
    tp = LimitOrder("SELL", 10, tp_price, orderId=ib.client.getReqId(), parentId=parent.orderId)
    return parent, stop, tp


async def test_staged_orders_wait_for_the_transmitting_child(syn_dir):
    async with running(syn_dir, start=1) as sim, client(sim) as ib:
        c = await _qualified(ib)
        parent, stop, tp = _bracket(ib, 103.5)
        staged = [ib.placeOrder(c, o) for o in (parent, stop)]
        await sync(ib)
        await sim.advance(1)
        await sync(ib)
        assert [t.orderStatus.status for t in staged] == [PS, PS]  # no answer, no fill
        assert sim.ctx.book.working() == [] and not staged[0].fills
        assert (await ib.reqOpenOrdersAsync()) == []
        last = ib.placeOrder(c, tp)
        await sync(ib)
        assert staged[0].orderStatus.status == "Submitted"
        assert staged[1].orderStatus.status == last.orderStatus.status == "PreSubmitted"


async def _refused_transmitting_child(syn_dir, refuse) -> None:
    async with running(syn_dir, start=1) as sim, client(sim) as ib:
        c = await _qualified(ib)
        errors = ErrorLog(ib)
        parent, stop, tp = _bracket(ib, 103.505)  # off the 0.01 grid
        staged = [ib.placeOrder(c, o) for o in (parent, stop)]
        await sync(ib)
        code = refuse(sim)
        last = ib.placeOrder(c, tp)
        await wait_until(lambda: last.isDone(), what="refused")
        assert (tp.orderId, code) in [(r, k) for r, k, _ in errors.items]
        for _ in range(2):
            await sim.advance(1)
            await sync(ib)
        # the signal to transmit was refused: the rest stays staged, unanswered, unfilled
        assert [t.orderStatus.status for t in staged] == [PS, PS] and not staged[0].fills
        held = [sim.ctx.book.get(ib.client.clientId, o.orderId) for o in (parent, stop)]
        assert [o.status for o in held] == [PS, PS] and sim.ctx.book.working() == []
        for t in reversed(staged):  # children first, as the gateway cancels
            ib.cancelOrder(t.order)
            assert t.orderStatus.status == "Cancelled"  # ib_async: at once, untransmitted
        await sync(ib)
        assert [o.status for o in held] == ["Cancelled", "Cancelled"]
        codes = [(r, k) for r, k, _ in errors.items]
        assert (parent.orderId, 202) in codes and (stop.orderId, 202) in codes
        assert not {10147, 10148} & set(errors.codes())
        assert sim.status()["open_orders"] == 0


async def test_a_transmitting_child_refused_for_its_price_leaves_the_rest_staged(syn_dir):
    await _refused_transmitting_child(syn_dir, lambda sim: 110)


async def test_a_rejected_transmitting_child_leaves_the_rest_staged(syn_dir):
    def reject(sim) -> int:
        sim.reject_next_order("ibsim: no shares to borrow")
        return 201

    await _refused_transmitting_child(syn_dir, reject)
