"""Numba kernels of :mod:`stratvector.backtest.montecarlo`: plain functions over arrays.

Random numbers: simulation ``i`` owns a counter-based SplitMix64 stream whose start is a
hash of ``(key, i)``, so a simulation's draws do not depend on which thread runs it or
on how many simulations there are. Integers in ``[0, n)`` come from the high 32 bits by
multiply-shift (n < 2**32; the bias, below ``n / 2**32``, is negligible here).

Max drawdown is tracked in one pass: ``min_t E_t / max(E_0..E_t) - 1`` with the peak
starting at ``E_0``; the division happens only when a new worst drawdown is reached.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53


@njit(cache=True)
def _mix_nb(z: np.uint64) -> np.uint64:
    """SplitMix64 finalizer: a bijective 64-bit hash."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def _uniform_nb(state: np.uint64) -> tuple[np.uint64, float]:
    """Next state and a uniform double in [0, 1) with 53 random bits."""
    state = state + _GOLDEN
    return state, float(_mix_nb(state) >> np.uint64(11)) * _TO_UNIT


@njit(cache=True)
def _randint_nb(state: np.uint64, n: int) -> tuple[np.uint64, int]:
    """Next state and an integer in [0, n), n < 2**32: the high 32 random bits scaled by n
    (multiply-shift; the bias, below n / 2**32, is negligible for trade and period counts)."""
    state = state + _GOLDEN
    x = _mix_nb(state) >> np.uint64(32)
    return state, np.int64((x * np.uint64(n)) >> np.uint64(32))


@njit(cache=True)
def _stream_nb(key: np.uint64, i: int) -> np.uint64:
    """The starting state of simulation ``i``'s random stream."""
    return _mix_nb(key + _GOLDEN * np.uint64(i + 1))


@njit(cache=True, parallel=True)
def trade_paths_nb(
    pnl: np.ndarray, n_sims: int, shuffle: bool, key: np.uint64, init_cash: float, n_keep: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Final equity, max drawdown per simulation, and the first ``n_keep`` equity paths
    (``n_keep x (len(pnl) + 1)``, starting at ``init_cash``) of sequential trade P&L."""
    n = pnl.shape[0]
    final = np.empty(n_sims)
    mdd = np.empty(n_sims)
    paths = np.empty((n_keep, n + 1))
    for i in prange(n_sims):
        state = _stream_nb(key, i)
        buf = pnl.copy() if shuffle else pnl
        eq = init_cash
        peak = init_cash
        worst = 0.0
        keep = i < n_keep
        if keep:
            paths[i, 0] = eq
        for k in range(n):
            if shuffle:  # incremental Fisher-Yates: position k gets a random remaining trade
                state, j = _randint_nb(state, n - k)
                j += k
                v = buf[j]
                buf[j] = buf[k]
                buf[k] = v
            else:
                state, j = _randint_nb(state, n)
                v = pnl[j]
            eq += v
            if eq > peak:
                peak = eq
            elif eq < peak * (1.0 + worst):  # new worst drawdown; divide only then
                worst = eq / peak - 1.0
            if keep:
                paths[i, k + 1] = eq
        final[i] = eq
        mdd[i] = worst
    return final, mdd, paths


@njit(cache=True, parallel=True)
def returns_paths_nb(
    returns: np.ndarray,
    n_sims: int,
    horizon: int,
    block_size: int,
    stationary: bool,
    key: np.uint64,
    init_cash: float,
    n_keep: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Final equity, max drawdown per simulation, and the first ``n_keep`` equity paths
    (``n_keep x (horizon + 1)``) of compounded returns drawn in circular blocks."""
    n = returns.shape[0]
    log_stay = np.log1p(-1.0 / block_size) if block_size > 1 else -1.0
    final = np.empty(n_sims)
    mdd = np.empty(n_sims)
    paths = np.empty((n_keep, horizon + 1))
    for i in prange(n_sims):
        state = _stream_nb(key, i)
        pos = 0
        left = 0
        eq = init_cash
        peak = init_cash
        worst = 0.0
        keep = i < n_keep
        if keep:
            paths[i, 0] = eq
        for t in range(horizon):
            if left == 0:  # a new block at a uniform random start
                state, pos = _randint_nb(state, n)
                left = block_size
                if stationary and block_size > 1:  # geometric length, mean block_size
                    state, u = _uniform_nb(state)
                    left = 1 + int(min(np.floor(np.log1p(-u) / log_stay), horizon))
            else:
                pos += 1
                if pos == n:
                    pos = 0
            left -= 1
            eq *= 1.0 + returns[pos]
            if eq > peak:
                peak = eq
            elif eq < peak * (1.0 + worst):
                worst = eq / peak - 1.0
            if keep:
                paths[i, t + 1] = eq
        final[i] = eq
        mdd[i] = worst
    return final, mdd, paths
