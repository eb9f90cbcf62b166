"""Strategy files: the seed format loads; every kind of mistake names file and key."""

from __future__ import annotations

import pytest

from stratvector.backtest import BpsSlippage, IBKRFixed, IBKRTiered
from stratvector.config import load_config
from stratvector.errors import ConfigError, DataError

SEED = """
[parameters]
entry_threshold = 0.02
exit_threshold = -0.01
lookback_period = 14
[risk]
max_drawdown = 0.15
position_size = 0.1
monte_carlo_sims = 1000
[data]
symbols = ["AAPL", "MSFT", "GOOG"]
start_date = "2020-01-01"
end_date = "2023-01-01"
"""


def _cfg(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_seed_file_loads_as_is_and_missing_symbol_is_named(tmp_path):
    cfg = load_config(_cfg(tmp_path, SEED))
    strategy, settings = cfg.build()
    assert strategy.name == "momentum"
    assert strategy.values["lookback_period"] == 14 and strategy.values["entry_threshold"] == 0.02
    assert settings.position_size == 0.1 and settings.max_drawdown == 0.15
    assert isinstance(settings.commission, IBKRFixed)
    with pytest.raises(DataError, match="'MSFT'"):
        cfg.load_bars()


def test_yaml_and_cost_model_tables(tmp_path):
    text = """
strategy: {name: sma_crossover}
parameters: {fast: 5, slow: 30}
costs:
  commission: ibkr_tiered
  slippage: {model: bps, bps: 3}
data: {symbols: [AAPL], start_date: 2020-01-01, end_date: 2020-06-30}
backtest: {fractional: true, initial_capital: 5000}
"""
    cfg = load_config(_cfg(tmp_path, text, "s.yaml"))
    strategy, settings = cfg.build()
    assert (strategy.p.fast, strategy.p.slow) == (5, 30)
    assert isinstance(settings.commission, IBKRTiered)
    assert settings.slippage == BpsSlippage(bps=3.0)
    assert settings.lot_size == 0.0 and settings.init_cash == 5000
    bars = cfg.load_bars()["AAPL"]
    assert str(bars.index[-1].date()) == "2020-06-30"  # end_date is inclusive


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[risk]\nposition_sise = 0.1\n",
            r"\[risk\] position_sise: unknown key; did you mean 'position_size'\?",
        ),
        ("[riks]\n", r"\[riks\]: unknown key; did you mean 'risk'\?"),
        (
            "[risk]\nposition_size = 'big'\n",
            r"\[risk\] position_size: Input should be a valid number",
        ),
        ("[risk]\nposition_size = -1\n", r"\[risk\] position_size: Input should be greater than 0"),
        ("[risk]\nstop_loss = 1.5\n", r"\[risk\] stop_loss: Input should be less than 1"),
        ("[costs]\ncommission = 'ibkr_fixd'\n", r"did you mean 'ibkr_fixed'\?"),
        (
            "[costs]\nslippage = {model='bps', bsp=2}\n",
            r"unknown parameter 'bsp'.*did you mean 'bps'\?",
        ),
        (
            "[parameters]\nlookback_perod = 3\n",
            r"\[parameters\]: unknown parameter 'lookback_perod'.*did you mean 'lookback_period'\?",
        ),
        (
            "[parameters]\nlookback_period = 0\n",
            r"\[parameters\]: parameter 'lookback_period' = 0 is out of bounds",
        ),
        ("[parameters]\nlookback_period = 2.5\n", r"must be a whole number"),
        (
            "[strategy]\nname = 'momentm'\n",
            r"unknown strategy 'momentm'; did you mean 'momentum'\?",
        ),
        ("[strategy]\nname = 'nope.py:X'\n", r"strategy file .*nope.py not found"),
    ],
)
def test_errors_name_file_key_and_what_is_allowed(tmp_path, text, expected):
    p = _cfg(tmp_path, text + "[data]\nsymbols = ['AAPL']\n")
    with pytest.raises(ConfigError, match=expected) as err:
        load_config(p)
    assert str(p) in str(err.value)


def test_missing_data_section_and_parse_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"\[data\]: required key is missing"):
        load_config(_cfg(tmp_path, "[risk]\nposition_size = 0.1\n"))
    with pytest.raises(ConfigError, match="cannot parse"):
        load_config(_cfg(tmp_path, "[risk\n"))
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.toml")
    with pytest.raises(ConfigError, match="unknown config type"):
        load_config(_cfg(tmp_path, "{}", "s.json"))
    with pytest.raises(ConfigError, match="duplicate symbols: AAPL"):
        load_config(_cfg(tmp_path, "[data]\nsymbols = ['AAPL', 'AAPL']\n"))


def test_user_strategy_from_a_file(tmp_path):
    (tmp_path / "mine.py").write_text(
        "from stratvector.strategy import Strategy, Param, Params, as_target_series\n"
        "class Always(Strategy):\n"
        "    name = 'always'\n"
        "    params = Params(level=Param(0.5, 0.0, 1.0))\n"
        "    def target(self, bars):\n"
        "        return as_target_series([self.p.level] * len(bars), bars)\n"
    )
    cfg = load_config(
        _cfg(
            tmp_path,
            "[strategy]\nname = 'mine.py:Always'\n[parameters]\nlevel = 0.25\n[data]\nsymbols = ['AAPL']\n",
        )
    )
    strategy, _ = cfg.build()
    assert type(strategy).__name__ == "Always" and strategy.p.level == 0.25
