"""``conversations.start`` for flows: a conversation with a person or a role, the request pre-written.

Called by the help adapters (``lotse.platform.help.adapters``) with the
flow's arguments, as the person running the session; the action decides
who may talk to whom.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lotse.platform.accounts.models import Account, AccountStatus, Role
from lotse.platform.conversations.actions import do_start_conversation
from lotse.platform.errors import ConflictError
from lotse.platform.i18n import _l


async def start_conversation(c: Any, a: Mapping[str, Any]) -> dict[str, Any]:
    from lotse.platform.help.adapters import _account_in_org, account_ref

    if a.get("with") is not None:
        people = [await _account_in_org(c.actor, a["with"])]
    else:
        people = await Account.filter(organisation_id=c.actor.organisation_id, role=Role(a["with_role"]),
                                      status=AccountStatus.ACTIVE).exclude(id=c.actor.account_id).order_by("id")
        if not people:
            raise ConflictError("nobody_to_contact", _l("Nobody in your organisation holds this role."))
    conversation = await do_start_conversation(c.svc, c.actor, subject=str(a["subject"]), participants=people,
                                               first_message=str(a["message"]))
    return {"conversation_id": conversation.id, "url": f"/conversations/{conversation.id}",
            "participants": [account_ref(p) for p in people]}
