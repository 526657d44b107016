"""What signing in tells the rest of the platform, after the commit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from lotse.platform.events import Event


@dataclass(frozen=True)
class _AccountEvent(Event):
    account_id: int

    @property
    def topic(self) -> str:
        return f"account.{self.account_id}"


@dataclass(frozen=True)
class SignedIn(_AccountEvent):
    name: ClassVar[str] = "auth.signed_in"


@dataclass(frozen=True)
class SignedOut(_AccountEvent):
    """One of the account's sessions ended by signing out (its open sockets close)."""

    name: ClassVar[str] = "auth.signed_out"


@dataclass(frozen=True)
class AccountBlocked(_AccountEvent):
    name: ClassVar[str] = "auth.account_blocked"


@dataclass(frozen=True)
class AccountUnblocked(_AccountEvent):
    name: ClassVar[str] = "auth.account_unblocked"


@dataclass(frozen=True)
class PasswordChanged(_AccountEvent):
    name: ClassVar[str] = "auth.password_changed"


@dataclass(frozen=True)
class TwoFactorEnabled(_AccountEvent):
    name: ClassVar[str] = "auth.two_factor_enabled"
