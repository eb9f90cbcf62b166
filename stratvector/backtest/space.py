"""The parameter space a search explores: ranges over a strategy's declared parameters.

A dimension is given as ``"start:stop:step"`` (``stop`` inclusive), ``"a,b,c"``, a
sequence of values, or left to the strategy's declared bounds and step. Values are
checked against the declared bounds and types; constraints declared by the strategy
(``"fast < slow"``) filter the grid and repair random samples.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stratvector.errors import ConfigError, StratVectorError
from stratvector.strategy.base import Strategy
from stratvector.strategy.params import Param, check_constraint, unknown_key_message

MAX_GRID = 5_000_000


@dataclass(frozen=True)
class Dimension:
    """One searched parameter and its candidate values (sorted, within bounds)."""

    name: str
    values: tuple[Any, ...]

    @property
    def low(self) -> Any:
        return self.values[0]

    @property
    def high(self) -> Any:
        return self.values[-1]


def parse_range(name: str, spec: str | Sequence[Any], param: Param) -> Dimension:
    """Turn ``"5:100:5"``, ``"5,10,20"`` or a sequence into a :class:`Dimension`."""
    kind = param.kind
    if isinstance(spec, str):
        text = spec.strip()
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ConfigError(f"--param {name}={spec}: expected start:stop:step")
            try:
                start, stop, step = (float(p) for p in parts)
            except ValueError as exc:
                raise ConfigError(
                    f"--param {name}={spec}: start, stop, step must be numbers"
                ) from exc
            if step <= 0:
                raise ConfigError(f"--param {name}={spec}: step must be > 0")
            if stop < start:
                raise ConfigError(
                    f"--param {name}={spec}: inverted range (stop {stop:g} < start {start:g})"
                )
            n = math.floor((stop - start) / step + 1e-9) + 1
            raw: list[Any] = [start + i * step for i in range(n)]
        else:
            raw = [_parse_scalar(name, v) for v in text.split(",") if v.strip()]
    else:
        raw = list(spec)
    if not raw:
        raise ConfigError(f"--param {name}={spec}: empty range")
    values = []
    for v in raw:
        if kind is int and isinstance(v, float) and v.is_integer():
            v = int(v)
        try:
            values.append(param.coerce(name, v))
        except StratVectorError as exc:
            raise ConfigError(f"--param {name}={spec}: {exc}") from exc
    return Dimension(name, tuple(sorted(set(values))))


def _parse_scalar(name: str, text: str) -> Any:
    t = text.strip().lower()
    if t in ("true", "false"):
        return t == "true"
    try:
        return int(t)
    except ValueError:
        try:
            return float(t)
        except ValueError as exc:
            raise ConfigError(f"--param {name}: {text!r} is not a number") from exc


def declared_dimension(name: str, param: Param) -> Dimension:
    """The declared bounds and step of a parameter as a dimension."""
    if param.kind is bool:
        return Dimension(name, (False, True))
    if param.low is None or param.high is None or param.step is None:
        raise ConfigError(
            f"parameter {name!r} declares no bounds and step to search; give --param {name}=start:stop:step"
        )
    return parse_range(name, f"{param.low}:{param.high}:{param.step}", param)


class ParamSpace:
    """The searched dimensions of a strategy plus the values held fixed."""

    def __init__(
        self,
        strategy_cls: type[Strategy],
        ranges: Mapping[str, str | Sequence[Any]] | None = None,
        fixed: Mapping[str, Any] | None = None,
    ) -> None:
        self.strategy_cls = strategy_cls
        specs = strategy_cls.params
        owner = strategy_cls.name or strategy_cls.__name__
        ranges = dict(ranges or {})
        for key in ranges:
            if key not in specs:
                raise ConfigError(unknown_key_message(key, list(specs), owner))
        if not ranges:  # search every numeric parameter over its declared bounds
            ranges = {k: None for k, p in specs.items() if p.kind is not bool}
        dims = []
        for key, spec in ranges.items():
            dims.append(
                declared_dimension(key, specs[key])
                if spec is None
                else parse_range(key, spec, specs[key])
            )
        self.dimensions: tuple[Dimension, ...] = tuple(dims)
        searched = {d.name for d in dims}
        base = specs.resolve({k: v for k, v in (fixed or {}).items() if k in specs}, owner)
        self.fixed: dict[str, Any] = {k: v for k, v in base.items() if k not in searched}
        self.constraints = specs.constraints

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)

    def grid_size(self) -> int:
        return math.prod(len(d.values) for d in self.dimensions)

    def full(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A searched point plus the fixed values: a complete parameter set."""
        return {**self.fixed, **values}

    def satisfies(self, params: Mapping[str, Any]) -> bool:
        return all(check_constraint(c, params)[0] for c in self.constraints)

    def grid(self) -> list[dict[str, Any]]:
        """Every combination that satisfies the constraints."""
        size = self.grid_size()
        if size > MAX_GRID:
            raise ConfigError(
                f"grid of {size:,} sets exceeds {MAX_GRID:,}; use --method random or genetic"
            )
        names = self.names
        out = []
        for combo in itertools.product(*(d.values for d in self.dimensions)):
            params = self.full(dict(zip(names, combo, strict=True)))
            if self.satisfies(params):
                out.append(params)
        if not out:
            raise ConfigError(
                f"no parameter set satisfies the constraints {', '.join(self.constraints)}"
            )
        return out

    def sample(
        self, rng: np.random.Generator, n: int, max_tries: int = 1000
    ) -> list[dict[str, Any]]:
        """``n`` random grid points satisfying the constraints (rejection sampling)."""
        out = []
        tries = 0
        while len(out) < n:
            tries += 1
            if tries > max_tries * max(n, 1):
                raise ConfigError("cannot sample parameter sets that satisfy the constraints")
            point = {d.name: d.values[int(rng.integers(len(d.values)))] for d in self.dimensions}
            params = self.full(point)
            if self.satisfies(params):
                out.append(params)
        return out

    def index_of(self, params: Mapping[str, Any]) -> tuple[int, ...]:
        """Grid position of a set (each value's index in its dimension)."""
        return tuple(d.values.index(params[d.name]) for d in self.dimensions)

    def at(self, idx: Sequence[int]) -> dict[str, Any]:
        return self.full({d.name: d.values[i] for d, i in zip(self.dimensions, idx, strict=True)})
