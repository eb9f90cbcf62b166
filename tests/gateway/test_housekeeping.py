"""GcPause: automatic garbage collection is off while bar times are decided, and
always comes back."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from stratvector.gateway.housekeeping import GcPause


@pytest.fixture(autouse=True)
def _gc_enabled_after():
    yield
    gc.enable()


def test_nested_pauses_end_with_the_last_resume() -> None:
    pause = GcPause()
    pause.pause()
    pause.pause()  # two bar times (two bar sizes) at once
    assert not gc.isenabled()
    pause.resume()
    assert not gc.isenabled()
    pause.resume()
    assert gc.isenabled()
    pause.resume()  # an extra resume does not go negative
    pause.pause()
    assert not gc.isenabled()
    pause.close()
    assert gc.isenabled()


def test_a_pause_never_ended_expires(caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> bool:
        pause = GcPause(limit=0.05)
        pause.pause()
        off = not gc.isenabled()
        await asyncio.sleep(0.15)
        return off

    with caplog.at_level(logging.WARNING, logger="stratvector.gateway.housekeeping"):
        assert asyncio.run(go())
    assert gc.isenabled()
    assert "resumed" in caplog.text


def test_a_resume_cancels_the_expiry() -> None:
    async def go() -> bool:
        pause = GcPause(limit=0.05)
        pause.pause()
        pause.resume()
        pause.pause()  # a new pause after the first one's expiry time must hold
        await asyncio.sleep(0.03)
        pause.resume()
        pause.pause()
        await asyncio.sleep(0.03)
        still_off = not gc.isenabled()
        pause.resume()
        return still_off

    assert asyncio.run(go())
