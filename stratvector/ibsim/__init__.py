"""ibsim: a stand-in for IB Gateway that speaks the TWS API on loopback.

The unmodified ib_async client (``IB().connectAsync(host, port, clientId)``) connects to
it as to IB Gateway: handshake and startup sync, contract details and historical bars
from a bar directory, a live replay of those bars, orders with fills at the backtest's
prices and costs, the account, and injectable faults. Use it for the demo, for tests and
for dry runs without an IB login::

    from stratvector.ibsim import IBSim, IBSimConfig

    async with IBSim(IBSimConfig(bars="data/", port=0)) as sim:
        ...  # connect ib_async to sim.port; drive time with await sim.advance(n)

or from the shell: ``stratvector ibsim --port 4002 --bars DIR --speed 1``.

Time model
----------
One clock for the whole server. The bar files are merged into one timeline (the union
of bar start times); the clock says how many timeline entries are *closed*. Bars are
revealed whole at their close; there is no intrabar data.

- The clock moves only by :meth:`IBSim.step` / ``await IBSim.advance(n)`` (tests drive it
  explicitly) or by the replay task at ``speed`` bars per second.
- When bar t+1 is revealed, in this order: working orders are matched against it (the
  book in ``orders.py``, by the rules in ``matching.py``: market orders accepted while
  bar t was the last closed bar fill at bar t+1's open plus slippage; resting
  limit/stop/trailing orders fill when the bar's range crosses them, via
  ``backtest/fills.py``), executions are booked with the configured commission model
  (``backtest/costs.py``, IBKR fixed by default; slippage none by default); then
  keepUpToDate historical subscribers get the closed bar as a historicalDataUpdate with
  a new date, real-time-bar subscribers get it as one realtimeBar, market-data
  subscribers get its ticks; then positions and account updates are pushed.
- ``await IBSim.advance_open()`` (:meth:`IBSim.step_open`) splits a step in two: the
  orders the next bar's open fills are filled and reported first, the bar stays open,
  and the next ``advance`` matches the rest of its range and closes it. Clients can
  react to the open's fills in between (fix a bracket child's price), as they can
  against IB, where a bar's later prices come long after its open. Closed bars only.
- A keepUpToDate bar list therefore always ends with a closed bar and grows by one
  closed bar per step (``hasNewBar`` is True). For a bar size coarser than the files',
  the last bar grows as file bars close, as IB's does.
- With ``forming_bars`` (``--forming-bars``) the list ends, as IB's does, with the bar
  that is forming. Each bar *opens* at its session time (intraday: its start; daily: the
  session open of its date) and is sent with its open as open, high, low and close and
  no volume (ibsim has no intrabar data: that is its only value until it closes); it
  *closes* at its end (daily: the session close) and is sent again, whole, as an update
  of the same bar. The next bar opens at once when it starts at that close (inside a
  session), otherwise when the clock reaches its open: after a session's last bar, and
  after every daily bar, nothing forms until the next session. The clock then has a
  time between bars: ``await IBSim.advance_time(seconds)`` lets simulated time pass
  (bars open and close as it passes them), ``step``/``advance`` jump to the next close,
  ``reqCurrentTime`` and handshake times follow it, and a request ending now also gets
  the forming bar. Orders sent while a bar forms fill at its open, like those sent
  before it opened.
- Trading sessions (:mod:`stratvector.ibsim.sessions`): ``session`` hours in
  ``time_zone`` for daily bars (default the whole UTC day), runs of back-to-back bars
  for intraday bars. Contract details report them as ``liquidHours`` and
  ``tradingHours`` (one text: ibsim has no extended hours) with ``timeZoneId``, for the
  days from yesterday to six days ahead, as IB lists about a week.
- :meth:`IBSim.revise_last_bar` sends a symbol's last closed bar again with other values
  to its keepUpToDate subscribers, as IB revises a bar after its close (the stored bars
  do not change).
- Historical requests return closed bars only, up to ``min(endDateTime, now)`` where
  now is the close of the last closed bar (``reqCurrentTime`` answers it): never the
  future.
- Real-time bars carry the file's bar (IB's are 5 seconds; ibsim replays at whatever
  size the files hold). ``useRTH`` and ``whatToShow`` are accepted and ignored.

Where ibsim knowingly differs from IB Gateway
---------------------------------------------
- No forming bar by default: keepUpToDate lists end with a closed bar (see above); with
  ``forming_bars`` the forming bar holds only its open until it closes, and IB's ~5 s
  updates in between are not sent.
- By default every order works until filled or cancelled: DAY orders expire at the end
  of their UTC day only with ``expire_day_orders``; ``outsideRth`` is ignored.
  Supported types: MKT, LMT,
  STP, STP LMT, TRAIL (amount or percent); others are rejected with error 201.
- One account; no margin or buying-power checks (account values report a flat 25 %
  margin for information only). Executions are kept for the whole run, not one day.
- The IBKR minimum commission applies per execution, as in the backtest.
- Quotes are the last close on both sides (bid = ask = last).
- One market rule for every contract (``market_rule``, the US stock rule by default;
  :mod:`stratvector.ibsim.ticks`), reported under the same id for SMART and the
  primary exchange; order prices off its grid are refused with error 110.
- Over ``limits.max_messages_per_second`` a request is answered with error 100 and
  dropped; the connection stays up.
- Connectivity "lost" (1100) only pauses the replay and notifies; requests are still
  served.
"""

from stratvector.ibsim.config import IBSimConfig, Limits, PacingLimits, cost_model
from stratvector.ibsim.server import IBSim
from stratvector.ibsim.ticks import US_STOCK_RULE, MarketRule

__all__ = [
    "US_STOCK_RULE",
    "IBSim",
    "IBSimConfig",
    "Limits",
    "MarketRule",
    "PacingLimits",
    "cost_model",
]
