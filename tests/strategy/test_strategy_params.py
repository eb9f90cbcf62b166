"""Typed parameters: kinds, bounds, unknown keys, constraints (params.py via strategies)."""

from __future__ import annotations

import pytest

from stratvector.errors import StrategyError
from stratvector.strategy import Param, Params, Strategy
from stratvector.strategy.builtins import Momentum, RsiReversion, SmaCrossover


class Demo(Strategy):
    name = "demo"
    params = Params(
        n=Param(10, 2, 50, "window"),
        x=Param(0.5, 0.0, 1.0, "weight"),
        flag=Param(False, doc="switch"),
        constraints=("n <= m",),
        m=Param(20, 2, 100, "other window"),
    )


def test_defaults_and_mapping():
    assert list(Demo.params) == ["n", "x", "flag", "m"]
    assert len(Demo.params) == 4 and Demo.params["n"].kind is int
    assert Demo.params.defaults() == {"n": 10, "x": 0.5, "flag": False, "m": 20}
    d = Demo()
    assert d.values == Demo.params.defaults() and d.p.n == 10
    assert repr(d) == "Demo(n=10, x=0.5, flag=False, m=20)"


def test_int_params_take_whole_numbers_only():
    assert Demo(n=12.0).p.n == 12 and isinstance(Demo(n=12.0).p.n, int)
    with pytest.raises(StrategyError, match=r"'n' must be a whole number, got 2\.5"):
        Demo(n=2.5)


def test_float_params_accept_ints_and_become_floats():
    d = Demo(x=1)
    assert d.p.x == 1.0 and isinstance(d.p.x, float)


@pytest.mark.parametrize("value", [1, 0, "true", None])
def test_bool_params_need_real_bools(value):
    with pytest.raises(StrategyError, match="'flag' must be true or false"):
        Demo(flag=value)
    assert Demo(flag=True).p.flag is True


@pytest.mark.parametrize("value", [True, "5", None, [3]])
def test_numbers_reject_bools_and_strings(value):
    with pytest.raises(StrategyError, match="'n' must be a number"):
        Demo(n=value)


@pytest.mark.parametrize(("key", "value"), [("n", 1), ("n", 51), ("x", -0.01), ("x", 1.5)])
def test_bounds_are_enforced(key, value):
    with pytest.raises(StrategyError, match=rf"'{key}' = .* is out of bounds \["):
        Demo(**{key: value})


def test_bounds_are_inclusive():
    assert Demo(n=2, x=0.0).p.n == 2
    assert Demo(n=20, x=1.0).p.x == 1.0


def test_unknown_key_suggests_the_close_match():
    with pytest.raises(StrategyError) as err:
        SmaCrossover(fsat=5)
    msg = str(err.value)
    assert "unknown parameter 'fsat' for sma_crossover; did you mean 'fast'?" in msg
    assert "allowed: fast, slow, allow_short" in msg
    with pytest.raises(StrategyError, match="did you mean 'lookback_period'"):
        Momentum(lookback_perod=10)


def test_unknown_key_without_a_close_match_lists_the_allowed():
    with pytest.raises(StrategyError) as err:
        Demo(zzz=1)
    assert "did you mean" not in str(err.value)
    assert "allowed: n, x, flag, m" in str(err.value)


def test_constraints_apply_after_merging_defaults():
    with pytest.raises(StrategyError, match=r"demo: constraint n <= m violated \(n=30, m=20\)"):
        Demo(n=30)
    assert Demo(n=30, m=30).p.n == 30
    with pytest.raises(StrategyError, match="fast < slow"):
        SmaCrossover(fast=60)  # slow defaults to 50
    with pytest.raises(StrategyError, match="exit_level < upper"):
        RsiReversion(upper=50.0)


@pytest.mark.parametrize("constraint", ["a < c", "a << b", "a < b < a", "a"])
def test_bad_constraint_declarations_fail_early(constraint):
    with pytest.raises(StrategyError, match="must read 'a < b'"):
        Params(constraints=(constraint,), a=Param(1), b=Param(2))


def test_parameter_values_are_read_only():
    d = Demo()
    with pytest.raises(AttributeError, match="read-only"):
        d.p.n = 3
    with pytest.raises(AttributeError):
        _ = d.p.missing


def test_numpy_scalars_accepted_nan_and_bad_defaults_rejected():
    import numpy as np
    import pytest

    from stratvector.errors import StrategyError
    from stratvector.strategy import Param, Params

    spec = Params(n=Param(10, 1, 100), x=Param(0.5, 0.0, 1.0), flag=Param(False))
    got = spec.resolve({"n": np.int64(12), "x": np.float32(0.25), "flag": np.bool_(True)})
    assert got == {"n": 12, "x": 0.25, "flag": True} and type(got["n"]) is int
    with pytest.raises(StrategyError, match="must be finite"):
        spec.resolve({"x": float("nan")})
    with pytest.raises(StrategyError, match="out of bounds"):
        Params(n=Param(0, 1, 10))
