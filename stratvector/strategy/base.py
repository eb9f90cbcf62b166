"""The one strategy interface shared by the backtester and the live runner.

A strategy maps closed bars to a target exposure in ``[-1, 1]``: the fraction of the
capital allocated to the symbol to hold long (+) or short (-) after bar t closes. NaN
means no view (flat). The target at bar t may depend only on bars up to and including t;
the runtime trades it at bar t+1's open. The backtester calls :meth:`Strategy.target`
once on the whole history; the live runner calls it on the last ``warmup + k`` closed
bars each time a bar closes and acts on the last value. Nothing else decides trades.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from stratvector.strategy.params import Params


class Strategy:
    """Base class. Subclasses set ``name``, ``params`` and implement ``target``.

    Parameter values are validated at construction and read as ``self.p.<name>``.
    ``warmup`` is the number of bars needed for the first valid target: the value at
    position ``warmup - 1`` is the first one the runtimes act on.
    """

    name: ClassVar[str] = ""
    params: ClassVar[Params] = Params()

    def __init__(self, **values: Any) -> None:
        resolved = type(self).params.resolve(values, owner=type(self).name or type(self).__name__)
        self.values: dict[str, Any] = resolved
        self.p = _Values(resolved)

    @property
    def warmup(self) -> int:
        """Bars needed before the first valid target (override when it depends on params)."""
        return 1

    def target(self, bars: pd.DataFrame) -> pd.Series:
        """Target exposure per bar, in [-1, 1] or NaN; must be causal."""
        raise NotImplementedError(f"{type(self).__name__} must implement target(bars)")

    @classmethod
    def target_batch(
        cls, bars: pd.DataFrame, param_sets: Sequence[Mapping[str, Any]]
    ) -> np.ndarray:
        """Targets of many parameter sets at once, shape ``(len(param_sets), len(bars))``.

        Row i must equal ``cls(**param_sets[i]).target(bars)``; parameter sweeps call
        this instead of ``target``, with sets they have already validated (an override
        need not validate again, only fill in defaults). The default loops over ``target``; a strategy may
        override it to share work between sets (e.g. one indicator per distinct window).
        The plain ``target`` stays the reference, and tests compare the two.
        """
        out = np.empty((len(param_sets), len(bars)))
        for i, values in enumerate(param_sets):
            out[i] = cls(**values).target(bars).to_numpy(dtype=np.float64)
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.values.items())
        return f"{type(self).__name__}({args})"


class _Values:
    """Read-only attribute access to resolved parameter values."""

    __slots__ = ("_v",)

    def __init__(self, values: dict[str, Any]) -> None:
        object.__setattr__(self, "_v", dict(values))

    def __getattr__(self, key: str) -> Any:
        try:
            return self._v[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("strategy parameters are read-only")


def as_target_series(values: np.ndarray | pd.Series, bars: pd.DataFrame) -> pd.Series:
    """Wrap an array of targets in a Series on ``bars.index`` named ``target``."""
    return pd.Series(np.asarray(values, dtype=np.float64), index=bars.index, name="target")
