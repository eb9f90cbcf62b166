"""The gateway's exceptions: a small hierarchy, translated at the ib_async boundary.

Everything a user or the environment can cause derives from :class:`GatewayError`
(itself a :class:`~stratvector.errors.StratVectorError`, so the CLI prints one line and
exits nonzero). The supervisor is the one place that decides retry or stop:
:attr:`GatewayError.retryable` says which side an error falls on.
"""

from __future__ import annotations

from stratvector.errors import StratVectorError


class GatewayError(StratVectorError):
    """Base of the live path's errors. ``retryable``: a reconnect may fix it."""

    retryable = False


class ConnectError(GatewayError):
    """No TWS API session could be opened (refused, timed out, wrong port, dropped)."""

    retryable = True


class DuplicateClientIdError(ConnectError):
    """IB answered error 326: another session holds this client id."""


class AccountMismatchError(GatewayError):
    """The connected account does not match the configured mode or account id."""


class LiveTradingNotConfirmed(GatewayError):
    """Live mode was asked for without every required switch (config, account, command line)."""


class ContractError(GatewayError):
    """A configured symbol is unknown to IB or ambiguous."""


class WarmupError(GatewayError):
    """Warmup or backfill bars could not be loaded (``retryable`` per instance: pacing,
    timeouts and a lost connection are; an unknown contract is not)."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class NotConnectedError(GatewayError):
    """An operation needs a live, synced connection and there is none."""

    retryable = True


class ReconcileError(GatewayError):
    """IB and the journal disagree in a way the gateway must not paper over."""
