"""Paper/live safety: which mode a run is in, and whether the connected account fits it.

Paper is the default everywhere. Live trading needs all three of: ``mode = "live"`` in
the config, the live account id in the config (``[gateway] account``), and a command-line
confirmation (``--live`` plus the account id typed back or given with
``--confirm-account``). After connecting, :func:`check_account` refuses to trade when the
Gateway is logged in to an account that does not fit: a paper run on a live account, a
live run on a paper account, or a live run on any account other than the configured one.
IB paper account ids start with ``DU`` (``DF`` for paper advisor accounts).

Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from stratvector.gateway.errors import AccountMismatchError, LiveTradingNotConfirmed

Mode = Literal["paper", "live"]
PAPER_PREFIXES = ("DU", "DF")
LIVE_PORTS = (4001, 7496)
PAPER_PORTS = (4002, 7497)


def is_paper_account(account: str) -> bool:
    """True for IB paper-trading account ids (``DU...``, ``DF...``)."""
    return account.strip().upper().startswith(PAPER_PREFIXES)


@dataclass(frozen=True)
class ModeDecision:
    """The mode a run trades in and the account it must find (``None``: any paper one)."""

    mode: Mode
    account: str | None


def resolve_mode(
    config_mode: Mode,
    config_account: str | None,
    cli_mode: Mode | None,
    confirmed_account: str | None,
) -> ModeDecision:
    """Decide the run's mode from the config and the command line.

    ``cli_mode`` is ``"paper"`` (``--paper``: always allowed, it only lowers risk),
    ``"live"`` (``--live``) or ``None``. Live needs the config to say live, name the
    account, and ``confirmed_account`` to repeat that account id. Raises
    :class:`LiveTradingNotConfirmed` saying which switch is missing.
    """
    if cli_mode == "paper":
        return ModeDecision("paper", config_account if config_mode == "paper" else None)
    if config_mode == "paper":
        if cli_mode == "live":
            raise LiveTradingNotConfirmed(
                '--live given but the config says mode = "paper"; set [gateway] mode = '
                '"live" and account = "<live account id>" to trade live'
            )
        return ModeDecision("paper", config_account)
    # the config asks for live
    if not config_account:
        raise LiveTradingNotConfirmed(
            'the config says mode = "live" but names no account; set [gateway] account = '
            '"<live account id>" (live trading needs the account spelled out)'
        )
    if is_paper_account(config_account):
        raise LiveTradingNotConfirmed(
            f'the config says mode = "live" but account {config_account} is a paper account '
            '(DU...); use mode = "paper" or name the live account'
        )
    if cli_mode != "live":
        raise LiveTradingNotConfirmed(
            'the config says mode = "live"; confirm on the command line with --live '
            "(or run with --paper)"
        )
    if (confirmed_account or "").strip() != config_account:
        raise LiveTradingNotConfirmed(
            f"live trading on {config_account} was not confirmed: type the account id when "
            f"asked, or pass --confirm-account {config_account}"
        )
    return ModeDecision("live", config_account)


def check_account(decision: ModeDecision, managed: Sequence[str], where: str) -> str:
    """The account to trade, or :class:`AccountMismatchError` if the Gateway's accounts
    (``managed``, from the connection) do not fit the mode. ``where`` names the Gateway
    (``host:port``) in messages."""
    accounts = [a.strip() for a in managed if a and a.strip()]
    if not accounts:
        raise AccountMismatchError(f"the Gateway at {where} reported no managed account")
    if decision.account is not None:
        if decision.account not in accounts:
            raise AccountMismatchError(
                f"the Gateway at {where} is logged in to {', '.join(accounts)}, not to the "
                f"configured account {decision.account}; refusing to trade"
            )
        account = decision.account
    elif len(accounts) == 1:
        account = accounts[0]
    else:
        raise AccountMismatchError(
            f"the Gateway at {where} manages several accounts ({', '.join(accounts)}); "
            "name the one to trade with [gateway] account"
        )
    paper = is_paper_account(account)
    if decision.mode == "paper" and not paper:
        raise AccountMismatchError(
            f"paper mode, but the Gateway at {where} is logged in to live account {account}; "
            "refusing to trade (log in to the paper account, or configure live mode)"
        )
    if decision.mode == "live" and paper:
        raise AccountMismatchError(
            f"live mode, but the Gateway at {where} is logged in to paper account {account}; "
            "refusing to trade"
        )
    return account


def port_warning(mode: Mode, port: int) -> str | None:
    """A hint when the port is IB's default for the other mode (the account check decides)."""
    if mode == "paper" and port in LIVE_PORTS:
        return f"paper mode on port {port}, IB's default live port; the account check decides"
    if mode == "live" and port in PAPER_PORTS:
        return f"live mode on port {port}, IB's default paper port; the account check decides"
    return None
