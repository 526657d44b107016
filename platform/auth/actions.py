"""Every state change of signing in: one ``do_*`` function each.

Policy, stated once:

- A wrong e-mail address, a wrong password, a blocked and a deactivated
  account get the same answer (``SignInFailedError``), and each costs one
  argon2 verification (against ``DUMMY_HASH`` when nobody matches), so that
  neither the message nor the timing tells whether an address exists.
- Five failed attempts in a row (passwords and second-factor codes alike)
  block the account and mail its owner a single-use unblock link (24 hours).
  A successful sign-in resets the count; a blocked account stays blocked
  until the link, a password reset or a professional unblocks it.
- Every sign-in starts a new session and ends the one the browser had, so a
  session id planted before sign-in is worth nothing (no fixation). The
  second factor, once given, replaces the pending session by a new one too.
- Single-use links are consumed only by a POST (a GET shows a button), so
  that mail scanners that fetch links do not use them up.
- Links asked for by e-mail address (password reset, a new unblock link)
  are mailed at most once per ``LINK_COOLDOWN`` per account and purpose, and
  one source address may ask at most ``SOURCE_LIMIT`` times per
  ``SOURCE_WINDOW`` while signed out. The answer is the same whether a mail
  went out, was held back, or nobody has the address; the audit row says
  which.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from tortoise.expressions import F, Q

from lotse.platform.accounts import sessions
from lotse.platform.accounts.actions import mail_language
from lotse.platform.accounts.models import Account, Token, TokenPurpose, WebSession
from lotse.platform.accounts.passwords import (
    hash_password,
    in_thread,
    needs_rehash,
    password_problem,
    verify_password,
)
from lotse.platform.accounts.tokens import (
    LIFETIME,
    TokenState,
    check_token,
    consume_token,
    issue_token,
)
from lotse.platform.accounts.validation import normalise_email
from lotse.platform.actions import MailSpec, Services, Unit, record, require, unit
from lotse.platform.audit.models import AuditEvent, AuditType, Outcome
from lotse.platform.auth import totp
from lotse.platform.auth.errors import LinkUnusableError, SignInFailedError, TwoFactorFailedError
from lotse.platform.auth.events import (
    AccountBlocked,
    AccountUnblocked,
    PasswordChanged,
    SignedIn,
    SignedOut,
    TwoFactorEnabled,
)
from lotse.platform.errors import ConflictError, NotSignedInError, ValidationError
from lotse.platform.i18n import LANGUAGES, _l
from lotse.platform.organisations.models import Organisation, TwoFactorRule
from lotse.platform.permissions import Actor, Permission

MAX_FAILED_ATTEMPTS = 5
MAX_EMAIL_LENGTH = 254
MAX_PASSWORD_LENGTH = 1024
LINK_COOLDOWN = timedelta(minutes=5)   # one reset (or unblock) mail per account and purpose
SOURCE_WINDOW = timedelta(minutes=15)
SOURCE_LIMIT = 10                      # signed-out link requests per source address and window
LINK_REQUESTS = ("auth.password_reset.request", "auth.unblock_link.request")


class SignInStage(StrEnum):
    """Where a person stands after the password (or a set-password link)."""

    SIGNED_IN = "signed_in"
    TWO_FACTOR = "two_factor_required"
    ENROL = "two_factor_enrolment_required"


@dataclass(frozen=True)
class SignInResult:
    account: Account
    session_key: str
    stage: SignInStage


@dataclass(frozen=True)
class Enrolment:
    recovery_codes: list[str]        # shown once, never stored in clear
    session_key: str | None = None   # set when enrolment completed a pending sign-in


def _as(account: Account, actor: Actor) -> Actor:
    """The account itself as actor, keeping where the request came from."""
    return Actor.of(account, source_address=actor.source_address, via=actor.via)


async def _organisation(account: Account) -> Organisation:
    return await Organisation.get(id=account.organisation_id)


async def _mail_link(u: Unit, svc: Services, account: Account, purpose: TokenPurpose) -> None:
    """Issue a new single-use link of ``purpose`` (the old one dies) and queue its mail in ``u``."""
    kind, path = {
        TokenPurpose.RESET: ("password_reset", "password/reset"),
        TokenPurpose.UNBLOCK: ("account_blocked", "unblock"),
    }[purpose]
    lifetime = LIFETIME[purpose]
    duration = ({"minutes": int(lifetime.total_seconds() // 60)} if purpose is TokenPurpose.RESET
                else {"hours": int(lifetime.total_seconds() // 3600)})
    secret = await issue_token(account, purpose, u.now)
    organisation = await _organisation(account)
    u.mail(MailSpec(
        kind=kind, to=account.email, language=mail_language(account, organisation),
        context={"name": account.first_name, "organisation": organisation.name,
                 "link": f"{svc.settings.base_url}/{path}/{secret}", **duration},
        account_id=account.id, organisation_id=organisation.id,
    ))


async def _source_over_limit(svc: Services, actor: Actor) -> bool:
    """Whether a signed-out source address asked for links too often lately."""
    if actor.account_id is not None or not actor.source_address:
        return False
    asked = await AuditEvent.filter(
        action__in=LINK_REQUESTS, source_address=actor.source_address, at__gt=svc.now() - SOURCE_WINDOW
    ).count()
    return asked >= SOURCE_LIMIT


async def _request_link(
    svc: Services, actor: Actor, action: str, email: str, purpose: TokenPurpose,
    refusal: Callable[[Account], str | None],
) -> None:
    """Mail a link of ``purpose`` to the account with this address, unless refused or held back; silently."""
    if await _source_over_limit(svc, actor):
        await record(svc, actor, action, AuditType.UPDATE, outcome=Outcome.REFUSED, details={"reason": "source_limit"})
        return
    email = normalise_email(email)[:MAX_EMAIL_LENGTH]
    account = await Account.get_or_none(email=email) if email else None
    reason = "unknown_account" if account is None else refusal(account)
    if reason is None and account is not None and await Token.filter(
        account_id=account.id, purpose=purpose, created_at__gt=svc.now() - LINK_COOLDOWN
    ).exists():
        reason = "cooldown"
    if reason is not None or account is None:
        await record(svc, actor, action, AuditType.UPDATE, subject=account, outcome=Outcome.REFUSED,
                     details={"reason": reason})
        return
    async with unit(svc, actor, action, None) as u:
        await _mail_link(u, svc, account, purpose)
        u.audit(AuditType.UPDATE, subject=account)


async def two_factor_rule(account: Account) -> TwoFactorRule:
    return (await _organisation(account)).two_factor


async def _stage_for(account: Account) -> SignInStage:
    rule = await two_factor_rule(account)
    if rule is TwoFactorRule.OFF:
        return SignInStage.SIGNED_IN
    if account.two_factor_enabled:
        return SignInStage.TWO_FACTOR
    if rule is TwoFactorRule.REQUIRED:
        return SignInStage.ENROL
    return SignInStage.SIGNED_IN


async def _open_session(u: Unit, account: Account, stage: SignInStage, *, second_factor: str) -> str:
    """Start the session of a sign-in inside ``u`` and audit it."""
    signed_in = stage is SignInStage.SIGNED_IN
    key = await sessions.start_session(
        account, u.now, pending_two_factor=not signed_in, source_address=u.actor.source_address
    )
    if signed_in:
        await Account.filter(id=account.id).update(last_login_at=u.now, failed_logins=0)
        account.last_login_at = u.now
        account.failed_logins = 0
        u.audit(AuditType.SIGN_IN, subject=account, action="auth.sign_in", details={"second_factor": second_factor})
        u.event(SignedIn(account.id))
    else:
        u.audit(AuditType.SIGN_IN, subject=account, action="auth.sign_in.password", details={"next": stage.value})
    return key


async def _count_failure(svc: Services, actor: Actor, account: Account, action: str, reason: str) -> None:
    """Count one failed attempt; the fifth in a row blocks the account and mails an unblock link."""
    async with unit(svc, actor, action, None) as u:
        await Account.filter(id=account.id).update(failed_logins=F("failed_logins") + 1)
        await account.refresh_from_db(fields=["failed_logins", "blocked_at"])
        u.audit(AuditType.SIGN_IN_FAILURE, subject=account, outcome=Outcome.FAILED,
                details={"reason": reason, "failed_logins": account.failed_logins})
        if account.failed_logins >= MAX_FAILED_ATTEMPTS and account.blocked_at is None:
            account.blocked_at = u.now
            await Account.filter(id=account.id).update(blocked_at=u.now)
            u.audit(AuditType.UPDATE, subject=account, action="auth.block",
                    details={"failed_logins": account.failed_logins})
            await _mail_link(u, svc, account, TokenPurpose.UNBLOCK)
            u.event(AccountBlocked(account.id))
            await sessions.end_all_sessions(account.id)


async def do_sign_in(
    svc: Services, actor: Actor, email: str, password: str, *, replaces: str | None = None
) -> SignInResult:
    """Check e-mail and password and start a session (pending when a second factor is due)."""
    email = normalise_email(email)[:MAX_EMAIL_LENGTH]
    password = password[:MAX_PASSWORD_LENGTH]
    account = await Account.get_or_none(email=email) if email else None
    # Always one argon2 verification, whoever asks: the timing must not tell.
    correct = await in_thread(verify_password, account.password_hash if account is not None else None, password)
    if account is None:
        await record(svc, actor, "auth.sign_in", AuditType.SIGN_IN_FAILURE, outcome=Outcome.FAILED,
                     details={"reason": "unknown_account"})
        raise SignInFailedError()
    reason = None
    if not account.is_active:
        reason = "deactivated"
    elif account.is_blocked:
        reason = "blocked"
    elif account.password_hash is None:
        reason = "no_password"
    if reason is not None:
        await record(svc, actor, "auth.sign_in", AuditType.SIGN_IN_FAILURE, subject=account,
                     outcome=Outcome.FAILED, details={"reason": reason})
        raise SignInFailedError()
    if not correct:
        await _count_failure(svc, actor, account, "auth.sign_in", "wrong_password")
        raise SignInFailedError()

    stage = await _stage_for(account)
    new_hash = await in_thread(hash_password, password) if needs_rehash(account.password_hash or "") else None
    async with unit(svc, _as(account, actor), "auth.sign_in", None) as u:
        await sessions.end_session(replaces)
        if new_hash:
            account.password_hash = new_hash
            await account.save(update_fields=["password_hash"])
        # The count is reset only once the second factor is given too; else the
        # password would buy an attacker endless guesses at the code.
        key = await _open_session(u, account, stage, second_factor="none")
    return SignInResult(account, key, stage)


async def pending_account(svc: Services, session_key: str | None) -> Account | None:
    """Return the account of a pending (password checked, second factor due) session."""
    session = await sessions.load_session(session_key, svc.now())
    if session is None or not session.pending_two_factor:
        return None
    account: Account = session.account
    return account


async def do_verify_two_factor(svc: Services, actor: Actor, session_key: str | None, code: str) -> SignInResult:
    """Complete a pending sign-in with a code from the app or a recovery code."""
    account = await pending_account(svc, session_key)
    if account is None or not account.two_factor_enabled or not account.totp_secret:
        raise NotSignedInError()
    now = svc.now()
    code = code.strip()[:64]
    step = totp.matching_step(account.totp_secret, code, now, account.totp_last_step)
    recovery_index = None if step is not None else await in_thread(
        totp.matching_recovery_code, list(account.recovery_codes), code
    )
    if step is not None:
        # A conditional update, so that two requests with one code cannot both pass.
        claimed = await Account.filter(
            Q(totp_last_step__isnull=True) | Q(totp_last_step__lt=step), id=account.id
        ).update(totp_last_step=step)
        if not claimed:
            step = None
    remaining: list[str] = []
    if recovery_index is not None:
        # Compare-and-set on the whole list, so that two requests with one code cannot both pass.
        known = list(account.recovery_codes)
        remaining = known[:recovery_index] + known[recovery_index + 1:]
        claimed = await Account.filter(id=account.id, recovery_codes=known).update(recovery_codes=remaining)
        if not claimed:
            recovery_index = None
    if step is None and recovery_index is None:
        await _count_failure(svc, actor, account, "auth.two_factor", "wrong_code")
        raise TwoFactorFailedError()

    async with unit(svc, _as(account, actor), "auth.sign_in", None) as u:
        if recovery_index is not None:
            account.recovery_codes = remaining
            u.audit(AuditType.UPDATE, subject=account, action="auth.recovery_code.use",
                    details={"recovery_codes_left": len(remaining)})
        await sessions.end_session(session_key)
        key = await _open_session(u, account, SignInStage.SIGNED_IN,
                                  second_factor="totp" if step is not None else "recovery_code")
    return SignInResult(account, key, SignInStage.SIGNED_IN)


async def do_enable_two_factor(
    svc: Services, actor: Actor, account: Account, secret: str, code: str, *, pending_session_key: str | None = None
) -> Enrolment:
    """Turn on two-factor with a secret the person's app confirmed; return recovery codes to show once.

    With ``pending_session_key`` (enrolment demanded by the organisation right
    after the password) the confirming code also completes the sign-in.
    """
    secret = secret.strip().upper()
    step = totp.matching_step(secret, code, svc.now(), None) if totp.is_secret(secret) else None
    if step is None:
        raise ValidationError(fields={"code": _l("This code is not valid. Please enter the code your app shows now.")})
    if pending_session_key is not None:
        pending = await pending_account(svc, pending_session_key)
        if pending is None or pending.id != account.id:
            raise NotSignedInError()
    # The permission is checked before the (slow) hashing, and again by the unit.
    await require(svc, actor, Permission.OWN_ACCOUNT, account, "auth.two_factor.enable")
    if await two_factor_rule(account) is TwoFactorRule.OFF:
        raise ConflictError("two_factor_off", _l("Your organisation does not use two-factor authentication."))
    codes = totp.new_recovery_codes()
    hashes = await in_thread(totp.hash_recovery_codes, codes)
    async with unit(svc, actor, "auth.two_factor.enable", Permission.OWN_ACCOUNT, account) as u:
        await account.refresh_from_db(fields=["totp_enabled_at"])
        if account.two_factor_enabled:
            raise ConflictError("two_factor_enabled", _l("Two-factor authentication is already on."))
        account.totp_secret = secret
        account.totp_enabled_at = u.now
        account.totp_last_step = step
        account.recovery_codes = hashes
        await account.save(update_fields=["totp_secret", "totp_enabled_at", "totp_last_step", "recovery_codes"])
        u.audit(AuditType.UPDATE, subject=account, details={"two_factor": "enabled"})
        u.event(TwoFactorEnabled(account.id))
        key = None
        if pending_session_key is not None:
            await sessions.end_session(pending_session_key)
            key = await _open_session(u, account, SignInStage.SIGNED_IN, second_factor="enrolment")
    return Enrolment(codes, key)


async def do_regenerate_recovery_codes(svc: Services, actor: Actor, account: Account) -> list[str]:
    """Replace all recovery codes by six new ones; return them to show once."""
    await require(svc, actor, Permission.OWN_ACCOUNT, account, "auth.recovery_codes.regenerate")
    codes = totp.new_recovery_codes()
    hashes = await in_thread(totp.hash_recovery_codes, codes)
    async with unit(svc, actor, "auth.recovery_codes.regenerate", Permission.OWN_ACCOUNT, account) as u:
        if not account.two_factor_enabled:
            raise ConflictError("two_factor_not_enabled", _l("Two-factor authentication is not on."))
        account.recovery_codes = hashes
        await account.save(update_fields=["recovery_codes"])
        u.audit(AuditType.UPDATE, subject=account, details={"recovery_codes": "regenerated"})
    return codes


async def do_sign_out(svc: Services, actor: Actor, session_key: str | None) -> None:
    """End this browser's session."""
    session = await sessions.load_session(session_key, svc.now())
    async with unit(svc, actor, "auth.sign_out", None) as u:
        await sessions.end_session(session_key)
        if session is not None:
            u.audit(AuditType.SIGN_OUT, subject=session.account)
            u.event(SignedOut(session.account.id))


async def do_request_password_reset(svc: Services, actor: Actor, email: str) -> None:
    """Mail a one-hour reset link when an active account has this address; answer the same either way."""
    await _request_link(svc, actor, "auth.password_reset.request", email, TokenPurpose.RESET,
                        lambda account: None if account.is_active else "deactivated")


async def do_send_unblock_link(svc: Services, actor: Actor, email: str) -> None:
    """Mail a new unblock link when a blocked, active account has this address; answer the same either way.

    Safe for signed-out people (the sign-in help): nothing tells whether the
    address exists; a refusal is audited like a password-reset request.
    """
    await _request_link(
        svc, actor, "auth.unblock_link.request", email, TokenPurpose.UNBLOCK,
        lambda account: "deactivated" if not account.is_active else (None if account.is_blocked else "not_blocked"),
    )


async def usable_link(svc: Services, purpose: TokenPurpose, secret: str) -> Token:
    """Return the token of a link that can still be used, else raise ``LinkUnusableError``."""
    check = await check_token(secret[:200], purpose, svc.now())
    data = {"purpose": purpose.value}
    if check.state is TokenState.EXPIRED:
        raise LinkUnusableError("link_expired", _l("This link has expired."), data=data)
    if check.state is TokenState.USED:
        raise LinkUnusableError("link_used", _l("This link has already been used, or a newer one was sent."), data=data)
    if check.state is not TokenState.VALID or check.token is None:
        raise LinkUnusableError("link_unknown", _l("This link is not valid. Please check that you copied all of it."), data=data)
    account: Account = check.token.account
    if not account.is_active:
        raise LinkUnusableError("account_deactivated", _l("This account is deactivated. Please contact your organisation."), data=data)
    return check.token


def check_new_password(password: str, repeat: str) -> None:
    """Raise ``ValidationError`` naming the field when a new password breaks the policy."""
    problem = password_problem(password)
    if problem is not None:
        raise ValidationError(fields={"password": problem})
    if password != repeat:
        raise ValidationError(fields={"repeat": _l("The two passwords are not the same.")})


async def do_set_password_with_link(
    svc: Services, actor: Actor, purpose: TokenPurpose, secret: str, password: str, repeat: str,
    *, replaces: str | None = None,
) -> SignInResult:
    """Set the password from a welcome or reset link, end every other session, and sign in."""
    if purpose not in (TokenPurpose.WELCOME, TokenPurpose.RESET):
        raise ValueError(purpose)
    token = await usable_link(svc, purpose, secret)
    check_new_password(password, repeat)
    account: Account = token.account
    new_hash = await in_thread(hash_password, password)
    stage = await _stage_for(account)
    async with unit(svc, _as(account, actor), f"auth.password.{purpose.value}", None) as u:
        if not await consume_token(token, u.now):
            raise LinkUnusableError("link_used", _l("This link has already been used, or a newer one was sent."),
                                    data={"purpose": purpose.value})
        await sessions.end_all_sessions(account.id)
        await sessions.end_session(replaces)
        await Token.filter(account_id=account.id, purpose=TokenPurpose.UNBLOCK, used_at=None,
                           revoked_at=None).update(revoked_at=u.now)
        was_blocked = account.is_blocked
        account.password_hash = new_hash
        account.password_changed_at = u.now
        account.failed_logins = 0
        account.blocked_at = None
        account.updated_at = u.now
        await account.save(update_fields=["password_hash", "password_changed_at", "failed_logins", "blocked_at", "updated_at"])
        u.audit(AuditType.UPDATE, subject=account, details={"password": "set", "link": purpose.value,
                                                            "unblocked": was_blocked})
        u.event(PasswordChanged(account.id))
        key = await _open_session(u, account, stage, second_factor="none")
    return SignInResult(account, key, stage)


async def do_unblock_with_link(svc: Services, actor: Actor, secret: str) -> Account:
    """Lift a lock-out with the link from the "account blocked" mail."""
    token = await usable_link(svc, TokenPurpose.UNBLOCK, secret)
    account: Account = token.account
    async with unit(svc, _as(account, actor), "auth.unblock", None) as u:
        if not await consume_token(token, u.now):
            raise LinkUnusableError("link_used", _l("This link has already been used, or a newer one was sent."),
                                    data={"purpose": TokenPurpose.UNBLOCK.value})
        account.blocked_at = None
        account.failed_logins = 0
        await account.save(update_fields=["blocked_at", "failed_logins"])
        u.audit(AuditType.UPDATE, subject=account, details={"unblocked": "link"})
        u.event(AccountUnblocked(account.id))
    return account


async def do_change_password(
    svc: Services, actor: Actor, account: Account, current: str, password: str, repeat: str,
    *, keep_session_id: int | None = None,
) -> None:
    """Change one's own password (the current one is asked) and end one's other sessions.

    A wrong current password counts towards the lock-out like a failed
    sign-in, so that a borrowed session cannot be used to guess it.
    """
    await require(svc, actor, Permission.OWN_ACCOUNT, account, "auth.password.change")
    if not await in_thread(verify_password, account.password_hash, current[:MAX_PASSWORD_LENGTH]):
        await _count_failure(svc, actor, account, "auth.password.change", "wrong_password")
        raise ValidationError(fields={"current": _l("This is not your current password.")})
    check_new_password(password, repeat)
    new_hash = await in_thread(hash_password, password)
    async with unit(svc, actor, "auth.password.change", Permission.OWN_ACCOUNT, account) as u:
        account.password_hash = new_hash
        account.password_changed_at = u.now
        account.updated_at = u.now
        await account.save(update_fields=["password_hash", "password_changed_at", "updated_at"])
        others = WebSession.filter(account_id=account.id)
        if keep_session_id is not None:
            others = others.exclude(id=keep_session_id)
        await others.delete()
        u.audit(AuditType.UPDATE, subject=account, details={"password": "changed"})
        u.event(PasswordChanged(account.id))


async def do_set_language(svc: Services, actor: Actor, account: Account, language: str | None) -> None:
    """Set the profile's language (``None``: the organisation's default)."""
    language = language or None
    if language is not None and language not in LANGUAGES:
        raise ValidationError(fields={"language": _l("Please choose one of the offered languages.")})
    async with unit(svc, actor, "account.set_language", Permission.OWN_ACCOUNT, account) as u:
        before = account.locale
        account.locale = language
        account.updated_at = u.now
        await account.save(update_fields=["locale", "updated_at"])
        u.audit(AuditType.UPDATE, subject=account, details={"locale": [before, language]})
