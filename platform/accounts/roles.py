"""Roles in words: one table for every page that names a role (accounts, audit log, dossier)."""

from __future__ import annotations

from lotse.platform.accounts.models import Role
from lotse.platform.i18n import LazyText, _l

ROLE_NAMES: dict[Role, LazyText] = {
    Role.CLIENT: _l("Client"),
    Role.THERAPIST: _l("Therapist"),
    Role.SUPERVISOR: _l("Supervisor"),
    Role.SECRETARY: _l("Secretary"),
    Role.APP_ADMIN: _l("Application admin"),
    Role.CONTENT_EDITOR: _l("Content editor"),
    Role.SERVICEDESK: _l("Service desk"),
}
# Who else can act, as audit rows name them (``actor_role``).
OTHER_ACTORS: dict[str, LazyText] = {
    "system": _l("Lotse (automatic)"),
    "anonymous": _l("Not signed in"),
}


def role_label(role: Role | str) -> str:
    """Return a role (a ``Role`` or its stored value, or "system"/"anonymous") in the current language."""
    value = role.value if isinstance(role, Role) else str(role or "")
    known = {r.value: text for r, text in ROLE_NAMES.items()} | OTHER_ACTORS
    text = known.get(value)
    return str(text) if text is not None else value
