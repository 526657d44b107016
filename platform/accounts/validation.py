"""Checking and normalising account data, the same for the form, the API and the import.

Every check returns a cleaned value or adds a lazily translated message to a
field map; ``clean_account_data`` raises one ``ValidationError`` naming every
field that is wrong, so a form shows all its problems at once. Uniqueness
(e-mail across the installation, client ID within the organisation) needs the
database and is checked by the actions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from lotse.platform.accounts.models import Gender, Role
from lotse.platform.errors import ValidationError
from lotse.platform.i18n import LazyText, _l
from lotse.platform.organisations.models import FieldRule, Organisation

EMAIL_MAX = 254
NAME_MAX = 100
PHONE_MAX = 32
CLIENT_REF_MAX = 64
EXTERNAL_REF_MAX = 128
LABEL_MAX = 100
EARLIEST_BIRTH = date(1900, 1, 1)

# Deliberately plain: one @, no spaces or control characters, a dotted domain
# of letters, digits and hyphens. Deliverability is proven by the welcome mail.
_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@"
    r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
_PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{5,30}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

CLIENT_FIELDS = ("gender", "date_of_birth", "phone", "client_ref", "label", "package")
COMMON_FIELDS = ("email", "first_name", "last_name")


def normalise_email(value: str) -> str:
    return value.strip().lower()


def email_problem(value: str) -> LazyText | None:
    """Say what is wrong with an (already normalised) e-mail address."""
    if not value:
        return _l("Please enter an e-mail address.")
    if len(value) > EMAIL_MAX:
        return _l("The e-mail address is too long.")
    local, _, _domain = value.partition("@")
    if ".." in value or local.startswith(".") or local.endswith(".") or not _EMAIL.match(value):
        return _l("Please enter a valid e-mail address, such as name@example.org.")
    return None


def parse_date(value: Any) -> date | None:
    """Accept a ``date`` or ISO ``YYYY-MM-DD`` / ``DD-MM-YYYY`` text; None when unreadable."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    for pattern, order in ((r"^(\d{4})-(\d{2})-(\d{2})$", "ymd"), (r"^(\d{2})-(\d{2})-(\d{4})$", "dmy")):
        match = re.match(pattern, text)
        if match:
            a, b, c = (int(part) for part in match.groups())
            try:
                return date(a, b, c) if order == "ymd" else date(c, b, a)
            except ValueError:
                return None
    return None


@dataclass
class _Collector:
    errors: dict[str, LazyText]

    def text(self, data: Mapping[str, Any], name: str, max_length: int, *, required: bool,
             missing: LazyText | None = None) -> str | None:
        raw = data.get(name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if required:
                self.errors[name] = missing or _l("This field is required.")
            return None
        if not isinstance(raw, str):
            self.errors[name] = _l("This value is not valid.")
            return None
        value = " ".join(raw.split())
        if _CONTROL.search(raw.replace("\n", " ").replace("\t", " ")):
            self.errors[name] = _l("This value is not valid.")
            return None
        if len(value) > max_length:
            self.errors[name] = _l("This is too long (at most %(count)s characters).", count=max_length)
            return None
        return value


def clean_account_data(
    data: Mapping[str, Any],
    *,
    role: Role,
    organisation: Organisation,
    today: date,
    partial: bool = False,
) -> dict[str, Any]:
    """Return the cleaned fields of ``data`` for an account of ``role``, or raise ``ValidationError``.

    With ``partial`` only the fields present in ``data`` are checked and returned
    (an update); otherwise every required field must be there (a creation).
    Field names are the model's: ``client_ref`` is the organisation's client ID.
    """
    c = _Collector({})
    out: dict[str, Any] = {}

    def wanted(name: str) -> bool:
        return not partial or name in data

    if wanted("email"):
        raw = data.get("email")
        if raw is not None and not isinstance(raw, str):
            c.errors["email"] = _l("Please enter a valid e-mail address, such as name@example.org.")
        else:
            email = normalise_email(raw or "")
            problem = email_problem(email)
            if problem is not None:
                c.errors["email"] = problem
            else:
                out["email"] = email
    for name in ("first_name", "last_name"):
        if wanted(name):
            value = c.text(data, name, NAME_MAX, required=True)
            if value is not None:
                out[name] = value

    if role is Role.CLIENT:
        if wanted("gender"):
            raw = data.get("gender")
            if not raw:
                c.errors["gender"] = _l("Please choose a gender.")
            elif raw not in {g.value for g in Gender}:
                c.errors["gender"] = _l("This value is not valid.")
            else:
                out["gender"] = Gender(raw)
        if wanted("date_of_birth"):
            raw = data.get("date_of_birth")
            if raw in (None, ""):
                c.errors["date_of_birth"] = _l("Please enter the date of birth.")
            else:
                born = parse_date(raw)
                if born is None:
                    c.errors["date_of_birth"] = _l("Please enter a date such as 17-05-1990.")
                elif born > today:
                    c.errors["date_of_birth"] = _l("The date of birth cannot be in the future.")
                elif born < EARLIEST_BIRTH:
                    c.errors["date_of_birth"] = _l("The date of birth cannot be before 1900.")
                else:
                    out["date_of_birth"] = born
        if wanted("phone"):
            phone = c.text(data, "phone", PHONE_MAX, required=organisation.phone_rule is FieldRule.REQUIRED,
                           missing=_l("Your organisation requires a phone number."))
            if phone is not None and not _PHONE.match(phone):
                c.errors["phone"] = _l("Please enter a phone number such as +31 6 12345678.")
            elif "phone" not in c.errors:
                out["phone"] = phone
        if wanted("client_ref"):
            ref = c.text(data, "client_ref", CLIENT_REF_MAX,
                         required=organisation.client_id_rule is FieldRule.REQUIRED,
                         missing=_l("Your organisation requires a client ID."))
            if "client_ref" not in c.errors:
                out["client_ref"] = ref
        for name in ("label", "package"):
            if wanted(name):
                value = c.text(data, name, LABEL_MAX, required=False)
                if name not in c.errors:
                    out[name] = value

    if c.errors:
        raise ValidationError(fields=c.errors)
    return out
