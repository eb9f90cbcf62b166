"""Typed strategy parameters with defaults and bounds.

A strategy declares ``params = Params(fast=Param(10, 2, 200), ...)``; the optimizer reads
the bounds to build search spaces, the config validates user values against them, and
the UI shows the docs. ``constraints`` like ``"fast < slow"`` relate two parameters.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from stratvector.errors import StrategyError

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_CONSTRAINT = re.compile(r"^\s*(\w+)\s*(<=|>=|<|>)\s*(\w+)\s*$")


@dataclass(frozen=True)
class Param:
    """One parameter: its default, inclusive bounds, and a one-line doc.

    The type (int, float or bool) is the default's type; an int parameter rejects 2.5.
    """

    default: int | float | bool
    low: int | float | None = None
    high: int | float | None = None
    doc: str = ""
    step: int | float | None = None

    @property
    def kind(self) -> type:
        return type(self.default)

    def coerce(self, name: str, value: Any) -> int | float | bool:
        """Return ``value`` as this parameter's type within bounds, or raise with the rule.

        numpy scalars (from ``np.arange`` grids) are accepted; NaN never is.
        """
        kind = self.kind
        if isinstance(value, np.generic):
            value = value.item()
        if kind is bool:
            if not isinstance(value, bool):
                raise StrategyError(f"parameter {name!r} must be true or false, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise StrategyError(f"parameter {name!r} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise StrategyError(f"parameter {name!r} must be finite, got {value!r}")
        if kind is int:
            if float(value) != int(value):
                raise StrategyError(f"parameter {name!r} must be a whole number, got {value!r}")
            value = int(value)
        else:
            value = float(value)
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            raise StrategyError(
                f"parameter {name!r} = {value!r} is out of bounds [{self.low}, {self.high}]"
            )
        return value


@dataclass(frozen=True)
class Params(Mapping[str, Param]):
    """The declared parameters of a strategy (an ordered, read-only mapping)."""

    _specs: Mapping[str, Param] = field(default_factory=dict)
    constraints: tuple[str, ...] = ()

    def __init__(self, constraints: tuple[str, ...] = (), **specs: Param) -> None:
        for key, spec in specs.items():
            spec.coerce(key, spec.default)  # a default outside its own bounds is a bug
        object.__setattr__(self, "_specs", MappingProxyType(dict(specs)))
        object.__setattr__(self, "constraints", tuple(constraints))
        for c in self.constraints:
            m = _CONSTRAINT.match(c)
            if not m or m.group(1) not in specs or m.group(3) not in specs:
                raise StrategyError(f"constraint {c!r} must read 'a < b' over declared params")

    def __getitem__(self, key: str) -> Param:
        return self._specs[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def defaults(self) -> dict[str, Any]:
        return {k: p.default for k, p in self._specs.items()}

    def resolve(self, values: Mapping[str, Any], owner: str = "strategy") -> dict[str, Any]:
        """Merge ``values`` over the defaults, validating names, types, bounds, constraints."""
        out = self.defaults()
        for key, value in values.items():
            if key not in self._specs:
                raise StrategyError(unknown_key_message(key, list(self._specs), owner))
            out[key] = self._specs[key].coerce(key, value)
        for c in self.constraints:
            ok, msg = check_constraint(c, out)
            if not ok:
                raise StrategyError(f"{owner}: {msg}")
        return out


def check_constraint(constraint: str, values: Mapping[str, Any]) -> tuple[bool, str]:
    """Evaluate ``"a < b"`` over ``values``; return (ok, message)."""
    m = _CONSTRAINT.match(constraint)
    assert m is not None  # validated in Params.__init__
    a, op, b = m.groups()
    ok = _OPS[op](values[a], values[b])
    return ok, f"constraint {constraint} violated ({a}={values[a]!r}, {b}={values[b]!r})"


def unknown_key_message(key: str, allowed: list[str], owner: str) -> str:
    """``unknown parameter 'fsat' for sma_crossover; did you mean 'fast'? allowed: ...``"""
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown parameter {key!r} for {owner}{hint} allowed: {', '.join(allowed) or '(none)'}"
