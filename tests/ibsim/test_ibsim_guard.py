"""The decode-error guard itself: a wrong field count is caught, not passed silently."""

from __future__ import annotations

from ib_async import Stock

from stratvector.ibsim import messages

from ._support import client, running


async def test_guard_catches_a_wrong_field_count(sample_dir, monkeypatch, ib_protocol_guard):
    original = messages.tick_price
    monkeypatch.setattr(
        messages, "tick_price", lambda *a: [*original(*a), "extra"]
    )  # one field too many
    async with running(sample_dir) as sim, client(sim) as ib:
        [c] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        await ib.reqTickersAsync(c)
    caught = [r for r in ib_protocol_guard.records if r.name == "ib_async.Decoder"]
    assert caught, "the guard did not see ib_async's decode error"
    ib_protocol_guard.clear()  # expected here; any other test with such a record fails
