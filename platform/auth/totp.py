"""Time-based one-time passwords (RFC 6238) and single-use recovery codes.

A code is accepted for the current 30-second step and one step either side
(clocks of phones drift), but never for a step at or before the last one
used: ``totp_last_step`` on the account makes a code single-use even within
its window. Recovery codes are stored only as argon2 hashes, like passwords.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime

import pyotp
import segno

from lotse.platform.accounts.passwords import hash_password, verify_password

ISSUER = "Lotse"
STEP_SECONDS = 30
WINDOW = 1  # steps either side of now
RECOVERY_CODE_COUNT = 6
# No 0/o, 1/l/i: codes are read off paper and typed by hand.
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_secret() -> str:
    """Return a fresh base32 secret (160 bits)."""
    return pyotp.random_base32(32)


def is_secret(secret: str) -> bool:
    """Say whether ``secret`` has the shape of a base32 TOTP secret."""
    return 16 <= len(secret) <= 64 and all(ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" for ch in secret)


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_data_uri(uri: str) -> str:
    """Return the QR code for ``uri`` as an SVG ``data:`` URI (the CSP allows ``img-src data:``)."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=5, border=4))


def step_at(moment: datetime) -> int:
    return int(moment.timestamp()) // STEP_SECONDS


def code_at(secret: str, moment: datetime) -> str:
    """Return the code an authenticator app shows at ``moment`` (tests and enrolment)."""
    return str(pyotp.TOTP(secret).generate_otp(step_at(moment)))


def normalise_code(code: str) -> str:
    return "".join(ch for ch in code if not ch.isspace() and ch != "-").lower()


def matching_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """Return the step ``code`` belongs to if it is valid now and newer than ``last_step``, else None."""
    code = normalise_code(code)
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = step_at(now)
    found = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        # Compare every candidate, so that timing does not tell which step matched.
        if hmac.compare_digest(str(totp.generate_otp(step)), code) and found is None:
            found = step
    if found is None or (last_step is not None and found <= last_step):
        return None
    return found


def new_recovery_codes() -> list[str]:
    """Return fresh recovery codes to show once, formatted ``xxxxx-xxxxx``."""
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def hash_recovery_codes(codes: list[str]) -> list[str]:
    return [hash_password(normalise_code(code)) for code in codes]


def matching_recovery_code(hashes: list[str], code: str) -> int | None:
    """Return the index of the stored hash ``code`` matches, or None."""
    code = normalise_code(code)
    if len(code) != 10:
        return None
    for index, stored in enumerate(hashes):
        if verify_password(stored, code):
            return index
    return None
