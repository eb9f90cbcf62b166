"""The built-in strategies, one small module each, registered by ``name``.

Each module also exposes its numba kernel (``<name>_nb``) over a close array, which a
parameter sweep may call directly; :meth:`Strategy.target` stays the reference.

Hazard for developers: numba's ``cache=True`` keys a cached kernel on its own source
file only. After editing ``indicators.py`` or ``signals.py``, the kernels here that call
them may still load the old machine code; delete the ``*.nbi``/``*.nbc`` files under
``__pycache__`` (or point ``NUMBA_CACHE_DIR`` at a fresh folder) before trusting results.
"""

from __future__ import annotations

from stratvector.strategy.base import Strategy
from stratvector.strategy.builtins.bollinger_breakout import BollingerBreakout
from stratvector.strategy.builtins.buy_and_hold import BuyAndHold
from stratvector.strategy.builtins.momentum import Momentum
from stratvector.strategy.builtins.rsi_reversion import RsiReversion
from stratvector.strategy.builtins.sma_crossover import SmaCrossover

BUILTINS: tuple[type[Strategy], ...] = (
    SmaCrossover,
    Momentum,
    RsiReversion,
    BollingerBreakout,
    BuyAndHold,
)

__all__ = [
    "BUILTINS",
    "BollingerBreakout",
    "BuyAndHold",
    "Momentum",
    "RsiReversion",
    "SmaCrossover",
]
