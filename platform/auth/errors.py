"""The errors of signing in; codes are stable (API clients and flows use them)."""

from __future__ import annotations

from lotse.platform.errors import PlatformError
from lotse.platform.i18n import _l


class SignInFailedError(PlatformError):
    """Wrong e-mail, wrong password, blocked or deactivated: deliberately one answer."""

    status = 401
    default_code = "sign_in_failed"
    default_message = _l("We could not sign you in with this e-mail address and password.")


class TwoFactorFailedError(PlatformError):
    status = 401
    default_code = "two_factor_failed"
    default_message = _l("This code is not valid. Please enter the current code from your app, or a recovery code.")


class LinkUnusableError(PlatformError):
    """A single-use link that is expired, used, superseded or unknown; ``data["purpose"]`` says which kind."""

    status = 410
    default_code = "link_unusable"
    default_message = _l("This link can no longer be used.")

