"""The short reprs of ib_async's Trade and Fill that the trader installs."""

from __future__ import annotations

import datetime as dt

from ib_async import CommissionReport, Execution, Fill, Order, OrderStatus, Stock, Trade

from stratvector.gateway import ib_repr


def test_trade_and_fill_reprs_are_one_line_naming_the_order() -> None:
    ib_repr.install()
    ib_repr.install()  # idempotent
    contract = Stock("AAPL", "SMART", "USD", conId=265598)
    order = Order(
        action="SELL",
        totalQuantity=100,
        orderType="STP LMT",
        lmtPrice=180.5,
        auxPrice=181.0,
        orderRef="sv1|mom|AAPL|20240102T000000Z|stop",
        account="DU1",
        tif="GTC",
    )
    order.orderId, order.permId, order.parentId = 7, 99, 6
    trade = Trade(contract, order, OrderStatus(orderId=7, status="Submitted", filled=40.0))
    text = f"{trade}"  # what ib_async's log lines build
    assert text == (
        "Trade(AAPL SELL 100 STP LMT @ 180.5 stop 181.0 orderId=7 permId=99 parentId=6 "
        "orderRef='sv1|mom|AAPL|20240102T000000Z|stop' tif=GTC account='DU1' "
        "Submitted 40.0/100)"
    )
    at = dt.datetime(2024, 1, 2, 14, 30, tzinfo=dt.UTC)
    execution = Execution(
        execId="0001.01", side="SLD", shares=40.0, price=180.75, orderId=7, orderRef="r"
    )
    fill = Fill(contract, execution, CommissionReport(commission=1.0, currency="USD"), at)
    assert f"{fill}" == (
        "Fill(AAPL SLD 40.0 @ 180.75 execId='0001.01' orderId=7 permId=0 orderRef='r' "
        "commission=1.0 USD time=2024-01-02 14:30:00+00:00)"
    )
    # empty objects (as ib_async builds them before IB fills them in) still print
    assert f"{Trade()}".startswith("Trade(")
    assert f"{Fill(None, Execution(), CommissionReport(), None)}".startswith("Fill(?")
