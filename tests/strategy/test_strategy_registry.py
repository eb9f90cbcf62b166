"""Resolving strategies by built-in name or ``path/to/file.py:ClassName``."""

from __future__ import annotations

import textwrap

import pytest

from stratvector.errors import StrategyError
from stratvector.strategy import builtin_strategies, check_lookahead, resolve_strategy
from stratvector.strategy.builtins import BUILTINS, Momentum

USER_FILE = textwrap.dedent(
    '''
    import numpy as np

    from stratvector.strategy import Param, Params, Strategy, as_target_series
    from stratvector.strategy.indicators import ema_nb


    class Helper:
        pass


    class EmaTrend(Strategy):
        """Long while the close is above its EMA."""

        name = "ema_trend"
        params = Params(span=Param(20, 2, 200, "EMA span"))

        @property
        def warmup(self):
            return self.p.span

        def target(self, bars):
            c = bars["close"].to_numpy()
            e = ema_nb(c, self.p.span)
            return as_target_series(np.where(np.isnan(e), np.nan, (c > e) * 1.0), bars)
    '''
)


@pytest.mark.parametrize("cls", BUILTINS, ids=lambda c: c.name)
def test_builtins_resolve_by_name(cls):
    assert resolve_strategy(cls.name) is cls
    assert builtin_strategies()[cls.name] is cls


def test_typo_suggests_the_builtin():
    with pytest.raises(StrategyError) as err:
        resolve_strategy("momentun")
    msg = str(err.value)
    assert "unknown strategy 'momentun'; did you mean 'momentum'?" in msg
    assert "bollinger_breakout, buy_and_hold, momentum, rsi_reversion, sma_crossover" in msg
    assert "path/to/file.py:ClassName" in msg


def test_unrelated_name_gets_no_suggestion():
    with pytest.raises(StrategyError) as err:
        resolve_strategy("qqqqqq")
    assert "did you mean" not in str(err.value)


def test_user_strategy_from_file(tmp_path, aapl):
    path = tmp_path / "my_strats.py"
    path.write_text(USER_FILE)
    cls = resolve_strategy(f"{path}:EmaTrend")
    assert cls.__name__ == "EmaTrend" and cls.name == "ema_trend"
    s = cls(span=30)
    t = s.target(aapl)
    assert t.iloc[:29].isna().all() and t.iloc[29:].notna().all()
    check_lookahead(s, aapl.iloc[:250])


def test_user_strategy_path_relative_to_base_dir(tmp_path):
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "mine.py").write_text(USER_FILE)
    cls = resolve_strategy("strategies/mine.py:EmaTrend", base_dir=tmp_path)
    assert cls().warmup == 20


def test_missing_file(tmp_path):
    with pytest.raises(StrategyError, match=r"strategy file .*nope\.py not found"):
        resolve_strategy("nope.py:Thing", base_dir=tmp_path)


def test_missing_class_lists_the_strategies_in_the_file(tmp_path):
    path = tmp_path / "my_strats.py"
    path.write_text(USER_FILE)
    with pytest.raises(StrategyError) as err:
        resolve_strategy(f"{path}:EmaTrnd")
    msg = str(err.value)
    assert "no class 'EmaTrnd'" in msg
    listed = msg.split("strategies in the file:")[1]
    assert "EmaTrend" in listed and "Helper" not in listed


def test_class_that_is_not_a_strategy(tmp_path):
    path = tmp_path / "my_strats.py"
    path.write_text(USER_FILE)
    with pytest.raises(
        StrategyError, match=r"is not a subclass of stratvector\.strategy\.Strategy"
    ):
        resolve_strategy(f"{path}:Helper")


def test_file_that_fails_to_import(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("x = 1 / 0\n")
    with pytest.raises(StrategyError, match="error while importing: ZeroDivisionError"):
        resolve_strategy(f"{path}:Anything")


def test_builtin_name_wins_over_nothing_else():
    assert resolve_strategy("momentum") is Momentum
