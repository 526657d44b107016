"""Password hashing (argon2id) and the password policy."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from lotse.platform.i18n import LazyText, _l

MIN_LENGTH = 12
_hasher = PasswordHasher()  # argon2id with the library's RFC 9106 "low memory" profile

# A fixed hash to verify against when no account matches, so that a wrong
# e-mail address costs the same time as a wrong password.
DUMMY_HASH = _hasher.hash("not-a-password-of-anyone")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problem(password: str) -> LazyText | None:
    """Return what is wrong with a new password, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return _l("The password must be at least %(count)s characters long.", count=MIN_LENGTH)
    if len(password) > 1024:
        return _l("The password is too long.")
    if all(ch.isalnum() or ch.isspace() for ch in password):
        return _l("The password must contain at least one special character, such as ! ? # or %%.")
    return None


P = ParamSpec("P")
R = TypeVar("R")


async def in_thread(work: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run argon2 work (~50 ms of CPU) in a thread, so other requests go on meanwhile."""
    return await asyncio.to_thread(work, *args, **kwargs)
