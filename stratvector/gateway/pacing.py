"""IB's historical-data pacing rules as a pure gate: how long to wait before a request.

IB refuses a historical-data request with error 162 ("Historical data request pacing
violation") when it breaks one of three rules:

1. more than ``max_requests`` (60) requests within ``window_s`` (600 s, any sliding
   window). IB applies this rule only to bars of 30 seconds or less
   (``window_max_bar_s``): requests for larger bars neither wait for it nor count in it;
2. six or more requests for the same contract, exchange and tick type (``whatToShow``)
   within ``per_contract_window_s`` (2 s), i.e. at most ``per_contract_max`` (5);
3. an identical request (same contract, end, duration, bar size, whatToShow, useRTH)
   within ``identical_cooldown_s`` (15 s).

Rules 2 and 3 apply to every bar size. The bar size is read from ``RequestKey.bar_size``,
IB's barSizeSetting (``"30 secs"``, ``"1 min"``, ``"1 day"``; see :func:`bar_seconds`); a
key without a bar size, or with one the gate cannot read, counts under rule 1 (the
cautious reading).

:class:`PacingGate` keeps the send times of past requests and answers
:meth:`~PacingGate.wait_time`: the seconds until a request may be sent without breaking
any rule. It does no I/O and never reads a clock: the caller passes ``now`` (seconds on
a monotonic clock), so every rule is unit-tested without sockets or sleeps. The caller
records each request with :meth:`~PacingGate.record` at the moment it is sent.

Hazards
-------
- The gate only knows the requests recorded in it. Use one gate per IB connection (the
  :class:`~stratvector.gateway.history.HistoryScheduler` owns one): two gates on one
  connection, or another program using the same IB login, can still cause violations.
  Those come back as error 162 and are retried with :meth:`PacingPolicy.backoff`.
- Requests IB refused are kept in the gate (IB does not say whether it counts them);
  this only ever makes the gate wait longer, never shorter.
- ``margin_s`` is added to every non-zero wait, for the time between the client's clock
  reading and IB's receipt of the request.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from stratvector.errors import ConfigError


@dataclass(frozen=True)
class PacingPolicy:
    """IB's historical-data limits and the retry schedule for error 162 (times in seconds).

    Defaults are IB's documented limits. The ``max_requests`` per ``window_s`` rule
    counts only requests for bars of at most ``window_max_bar_s`` seconds (IB: 30;
    ``math.inf`` applies it to every bar size). ``backoff_*`` and ``max_retries`` govern what
    happens after a pacing violation or a timeout: the n-th retry waits
    ``min(backoff_initial_s * backoff_factor ** (n - 1), backoff_max_s)`` (2, 4, 8, 16, 32 s),
    and after ``max_retries`` failed retries the request fails.
    """

    max_requests: int = 60
    window_s: float = 600.0
    per_contract_max: int = 5
    per_contract_window_s: float = 2.0
    identical_cooldown_s: float = 15.0
    backoff_initial_s: float = 2.0
    backoff_factor: float = 2.0
    backoff_max_s: float = 60.0
    max_retries: int = 5
    margin_s: float = 0.05
    window_max_bar_s: float = 30.0

    def __post_init__(self) -> None:
        for name in ("max_requests", "per_contract_max"):
            if getattr(self, name) < 1:
                raise ConfigError(f"pacing {name} must be >= 1, not {getattr(self, name)}")
        for name in (
            "window_s",
            "per_contract_window_s",
            "backoff_initial_s",
            "backoff_max_s",
            "window_max_bar_s",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"pacing {name} must be > 0 seconds, not {getattr(self, name)}")
        if self.identical_cooldown_s < 0 or self.margin_s < 0:
            raise ConfigError("pacing identical_cooldown_s and margin_s must be >= 0 seconds")
        if self.backoff_factor < 1:
            raise ConfigError(f"pacing backoff_factor must be >= 1, not {self.backoff_factor}")
        if self.max_retries < 0:
            raise ConfigError(f"pacing max_retries must be >= 0, not {self.max_retries}")

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        if retry < 1:
            raise ValueError(f"retry numbers start at 1, not {retry}")
        delay = self.backoff_initial_s * self.backoff_factor ** (retry - 1)
        return min(delay, self.backoff_max_s)


#: The default policy (IB's documented limits); a module constant so it can be a default.
DEFAULT_POLICY = PacingPolicy()

_BAR_SIZE = re.compile(r"^\s*(\d+)\s*(secs?|mins?|hours?|days?|weeks?|months?)\s*$", re.I)
_UNIT_S = {"sec": 1, "min": 60, "hour": 3600, "day": 86_400, "week": 7 * 86_400}


def bar_seconds(bar_size: str) -> float | None:
    """The length in seconds of IB's barSizeSetting ``bar_size`` (``"5 secs"`` -> 5,
    ``"1 min"`` -> 60, ``"1 day"`` -> 86400; a month counts as 30 days), or None when it
    is not one."""
    m = _BAR_SIZE.match(bar_size)
    if m is None:
        return None
    n, unit = int(m.group(1)), m.group(2).lower().rstrip("s")
    return float(n * (30 * 86_400 if unit == "month" else _UNIT_S[unit]))


@dataclass(frozen=True)
class RequestKey:
    """What the pacing rules compare about a historical request.

    ``contract`` names the instrument (the scheduler uses the symbol, so the same stock
    counts once whatever exchange field a caller set). The per-contract rule counts
    requests with the same ``contract`` and ``what_to_show``; the identical rule compares
    every field. ``bar_size`` is IB's barSizeSetting: it decides whether the 10-minute
    rule applies (empty or unreadable: it does).
    """

    contract: str
    what_to_show: str = "TRADES"
    bar_size: str = ""
    duration: str = ""
    end: str = ""
    use_rth: bool = True

    @property
    def contract_key(self) -> tuple[str, str]:
        return (self.contract, self.what_to_show)


@dataclass
class PacingGate:
    """Send times of recent requests, and the wait each rule imposes on the next one.

    ``now`` must not go backwards between calls (use one monotonic clock).
    """

    policy: PacingPolicy = DEFAULT_POLICY
    _all: deque[float] = field(default_factory=deque, init=False, repr=False)
    _per_contract: dict[tuple[str, str], deque[float]] = field(
        default_factory=dict, init=False, repr=False
    )
    _identical: dict[RequestKey, float] = field(default_factory=dict, init=False, repr=False)

    def wait_time(self, key: RequestKey, now: float) -> float:
        """Seconds from ``now`` until ``key`` may be sent without breaking a rule (0 = now)."""
        p = self.policy
        self._expire(now)
        wait = 0.0
        if self.in_window(key):
            wait = max(wait, _window_wait(self._all, p.max_requests, p.window_s, now))
        per = self._per_contract.get(key.contract_key)
        if per is not None:
            wait = max(wait, _window_wait(per, p.per_contract_max, p.per_contract_window_s, now))
        last = self._identical.get(key)
        if last is not None:
            wait = max(wait, last + p.identical_cooldown_s - now)
        return wait + p.margin_s if wait > 0 else 0.0

    def record(self, key: RequestKey, now: float) -> None:
        """Note that ``key`` was sent at ``now``."""
        self._expire(now)
        if self.in_window(key):
            self._all.append(now)
        self._per_contract.setdefault(key.contract_key, deque()).append(now)
        self._identical[key] = now

    def in_window(self, key: RequestKey) -> bool:
        """Whether ``key`` is subject to the ``max_requests`` per ``window_s`` rule: its
        bar size is at most ``window_max_bar_s`` seconds, or unknown."""
        secs = bar_seconds(key.bar_size)
        return secs is None or secs <= self.policy.window_max_bar_s

    def recent(self, now: float) -> int:
        """How many recorded requests of the 10-minute rule (bars of 30 s or less, or of
        unknown size) are still inside its window at ``now``."""
        self._expire(now)
        return len(self._all)

    def _expire(self, now: float) -> None:
        p = self.policy
        _drop_older(self._all, now - p.window_s)
        for ck in list(self._per_contract):
            q = self._per_contract[ck]
            _drop_older(q, now - p.per_contract_window_s)
            if not q:
                del self._per_contract[ck]
        stale = [k for k, t in self._identical.items() if now - t >= p.identical_cooldown_s]
        for k in stale:
            del self._identical[k]


def _drop_older(times: deque[float], cutoff: float) -> None:
    """Drop entries at or before ``cutoff`` (an entry exactly one window old has expired)."""
    while times and times[0] <= cutoff:
        times.popleft()


def _window_wait(times: deque[float], limit: int, window: float, now: float) -> float:
    """Wait until fewer than ``limit`` of ``times`` (sorted, all inside the window) remain."""
    excess = len(times) - limit
    if excess < 0:
        return 0.0
    return times[excess] + window - now


__all__ = ["DEFAULT_POLICY", "PacingGate", "PacingPolicy", "RequestKey", "bar_seconds"]
