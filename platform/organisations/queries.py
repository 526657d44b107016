"""Access-checked reads of organisations: an organisation outside the actor's own is not found."""

from __future__ import annotations

from lotse.platform.actions import Services, require
from lotse.platform.errors import NotFoundError
from lotse.platform.organisations.models import Organisation
from lotse.platform.permissions import Actor, Permission


async def get_organisation_for(
    svc: Services, actor: Actor, slug: str, permission: Permission | None = None
) -> Organisation:
    """Return the organisation by slug when it is the actor's own (and ``permission`` holds), else 404."""
    organisation = await Organisation.get_or_none(slug=slug)
    if organisation is None or (not actor.is_system and organisation.id != actor.organisation_id):
        raise NotFoundError()
    if permission is not None:
        await require(svc, actor, permission, organisation, "organisation.view")
    return organisation


async def own_organisation(actor: Actor) -> Organisation:
    """The actor's own organisation."""
    organisation = await Organisation.get_or_none(id=actor.organisation_id) if actor.organisation_id else None
    if organisation is None:
        raise NotFoundError()
    return organisation
