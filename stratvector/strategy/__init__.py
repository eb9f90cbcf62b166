"""The strategy contract, parameters, indicators and built-in strategies."""

from stratvector.strategy.base import Strategy, as_target_series
from stratvector.strategy.lookahead import LookaheadReport, check_lookahead
from stratvector.strategy.params import Param, Params
from stratvector.strategy.registry import builtin_strategies, resolve_strategy

__all__ = [
    "LookaheadReport",
    "Param",
    "Params",
    "Strategy",
    "as_target_series",
    "builtin_strategies",
    "check_lookahead",
    "resolve_strategy",
]
