"""Every example strategy file shipped in strategies/ loads and builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratvector.config import load_config

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "strategies").glob("*.*"))


def test_there_are_examples():
    assert {p.name for p in EXAMPLES} >= {"momentum.toml", "sma_crossover.yaml", "paper_ibsim.toml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_loads_and_builds(path):
    cfg = load_config(path)
    strategy, settings = cfg.build()
    assert strategy.warmup >= 1 and settings.init_cash > 0
    assert cfg.load_bars()  # the bundled sample data covers every example's symbols
