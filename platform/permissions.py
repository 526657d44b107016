"""Roles, permissions and the one question every action asks: ``require``.

The table ``RULES`` says, per permission, which kinds of actor may act on
which subject; a permission is granted when any of its rules holds. Every
rule also demands that actor and subject belong to the same organisation.
Flows get no rights of their own: a flow runs an action as the person who
runs the flow, through this same table.

Application admins manage professionals and the organisation, and see no
clinical content; clients are managed by the professionals linked to them
and by secretaries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lotse.platform.accounts.models import PROFESSIONAL_ROLES, Account, Role
from lotse.platform.calls.models import Call, CallInvitation
from lotse.platform.caseload.models import CaseloadLink, LinkKind
from lotse.platform.conversations.models import ChatParticipant, Conversation
from lotse.platform.organisations.models import LinkPolicy, Organisation
from lotse.platform.tasks.models import Task


class Permission(StrEnum):
    PROFESSIONAL_CREATE = "professional.create"
    PROFESSIONAL_MANAGE = "professional.manage"        # edit, (de)activate, resend welcome, unblock
    CLIENT_CREATE = "client.create"
    CLIENT_VIEW = "client.view"                        # open the dossier
    CLIENT_MANAGE = "client.manage"                    # edit, (de)activate, resend welcome, unblock
    TWO_FACTOR_RESET = "account.two_factor_reset"
    ACCOUNTS_IMPORT = "accounts.import"
    ORG_SETTINGS = "organisation.settings"
    AUDIT_READ = "audit.read"
    OWN_ACCOUNT = "account.own"                        # change own password, two-factor, language
    CLIENT_TOOLS_VIEW = "client.tools_view"            # tool content and progress (not secretaries)
    CASELOAD_SEARCH = "caseload.search"                # search inside one's own caseload
    CASELOAD_SEARCH_OUTSIDE = "caseload.search_outside"  # where the organisation allows it; motivated
    CASELOAD_LINK = "caseload.link"                    # link or unlink other professionals
    CASELOAD_SELF_LINK = "caseload.self_link"          # link policy "self-link"
    CASELOAD_REQUEST_LINK = "caseload.request_link"    # link policy "client consent"
    PROFESSIONALS_LIST = "organisation.professionals"  # who works here, filterable by role
    TASK_CREATE = "task.create"
    TASK_COMPLETE = "task.complete"                    # the assignee, or anyone holding the assigned role
    TOOL_CATALOGUE = "tools.catalogue"                 # manage the organisation's tools
    TOOL_ASSIGN = "tools.assign"                       # assign, archive, hand over a client's tools
    HELP_OUTCOMES = "help.outcomes"                    # outcome statistics of the help flows
    CONVERSATION_START = "conversation.start"          # who may talk to whom is checked by the action
    CONVERSATION_READ = "conversation.read"            # participants, also after leaving (history)
    CONVERSATION_POST = "conversation.post"            # active participants
    CONVERSATION_MANAGE = "conversation.manage"        # the manager: subject, participants, edits, hand-over
    CONVERSATION_LEAK_REMOVE = "conversation.leak_remove"  # professionals in it, where data-leak deletion is on
    CONVERSATION_PURGE = "conversation.purge"          # application admins; also the deletion log
    CALL_START = "call.start"                          # active participants of the conversation
    CALL_JOIN = "call.join"                            # invited active participants of the conversation
    CALL_MANAGE = "call.manage"                        # the conversation's manager: invite more, end


@dataclass(frozen=True)
class Actor:
    """Who acts, and in what setting; passed to every action and query."""

    account_id: int | None
    role: Role | None
    organisation_id: int | None
    name: str = ""
    source_address: str = ""
    via: str = "web"            # web, api, flow, cli, job
    reason: str = ""            # e.g. "help session 3f2a…" when a flow acts
    on_behalf_of_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, account: Account, **context: Any) -> Actor:
        return cls(account.id, account.role, account.organisation_id, account.name, **context)

    @classmethod
    def system(cls, via: str = "job", reason: str = "") -> Actor:
        return cls(None, None, None, "Lotse", via=via, reason=reason)

    @classmethod
    def anonymous(cls, source_address: str = "", organisation_id: int | None = None) -> Actor:
        return cls(None, None, organisation_id, "", source_address=source_address, via="web")

    @property
    def is_system(self) -> bool:
        return self.account_id is None and self.role is None and self.name == "Lotse"

    def with_(self, **changes: Any) -> Actor:
        from dataclasses import replace

        return replace(self, **changes)


Subject = Account | Organisation | None
Rule = Callable[[Actor, Any], Awaitable[bool]]


def _role(*roles: Role) -> Rule:
    async def rule(actor: Actor, subject: Any) -> bool:
        return actor.role in roles

    rule.__name__ = "role_" + "_".join(r.value for r in roles)
    return rule


def _on_professional(*roles: Role) -> Rule:
    async def rule(actor: Actor, subject: Any) -> bool:
        return actor.role in roles and isinstance(subject, Account) and subject.role is not Role.CLIENT

    return rule


def _on_client(*roles: Role) -> Rule:
    async def rule(actor: Actor, subject: Any) -> bool:
        return actor.role in roles and isinstance(subject, Account) and subject.role is Role.CLIENT

    return rule


async def linked_treating(actor: Actor, subject: Any) -> bool:
    """The actor is a therapist linked (not read-only) to the client."""
    if actor.role is not Role.THERAPIST or not isinstance(subject, Account) or subject.role is not Role.CLIENT:
        return False
    return await CaseloadLink.filter(
        client_id=subject.id, professional_id=actor.account_id, kind=LinkKind.TREATING
    ).exists()


async def linked_any(actor: Actor, subject: Any) -> bool:
    """The actor is linked to the client, read-only links included."""
    if not isinstance(subject, Account) or subject.role is not Role.CLIENT or actor.account_id is None:
        return False
    return await CaseloadLink.filter(client_id=subject.id, professional_id=actor.account_id).exists()


async def itself(actor: Actor, subject: Any) -> bool:
    return isinstance(subject, Account) and actor.account_id is not None and subject.id == actor.account_id


def _under_link_policy(policy: LinkPolicy) -> Rule:
    """A therapist, about a client of an organisation whose link policy is ``policy``."""

    async def rule(actor: Actor, subject: Any) -> bool:
        if actor.role is not Role.THERAPIST or not isinstance(subject, Account) or subject.role is not Role.CLIENT:
            return False
        organisation = await Organisation.get_or_none(id=subject.organisation_id)
        return organisation is not None and organisation.link_policy is policy

    rule.__name__ = f"link_policy_{policy.value}"
    return rule


async def outside_search_allowed(actor: Actor, subject: Any) -> bool:
    """A therapist or supervisor, in an organisation that allows searching outside the caseload."""
    return (
        actor.role in (Role.THERAPIST, Role.SUPERVISOR)
        and isinstance(subject, Organisation)
        and subject.search_outside_caseload
    )


async def task_assignee(actor: Actor, subject: Any) -> bool:
    """The task is the actor's own, or assigned to the actor's role in the actor's organisation."""
    if not isinstance(subject, Task) or subject.organisation_id != actor.organisation_id:
        return False
    if subject.assignee_id is not None:
        return bool(subject.assignee_id == actor.account_id)
    return subject.assignee_role is not None and subject.assignee_role is actor.role


async def conversation_participant(actor: Actor, subject: Any) -> bool:
    """The actor takes part in the conversation, or took part (history stays readable)."""
    if not isinstance(subject, Conversation) or subject.organisation_id != actor.organisation_id:
        return False
    return await ChatParticipant.filter(conversation_id=subject.id, account_id=actor.account_id).exists()


async def conversation_active_participant(actor: Actor, subject: Any) -> bool:
    """The actor takes part in the conversation and has not left it."""
    if not isinstance(subject, Conversation) or subject.organisation_id != actor.organisation_id:
        return False
    return await ChatParticipant.filter(
        conversation_id=subject.id, account_id=actor.account_id, left_at=None
    ).exists()


async def conversation_manager(actor: Actor, subject: Any) -> bool:
    return (
        isinstance(subject, Conversation)
        and subject.organisation_id == actor.organisation_id
        and subject.manager_id == actor.account_id
        and await conversation_active_participant(actor, subject)
    )


async def leak_remover(actor: Actor, subject: Any) -> bool:
    """A professional taking part, in an organisation with data-leak deletion on."""
    if actor.role is None or actor.role is Role.CLIENT or not await conversation_active_participant(actor, subject):
        return False
    organisation = await Organisation.get_or_none(id=subject.organisation_id)
    return organisation is not None and organisation.data_leak_deletion


async def _call_conversation(subject: Any) -> Conversation | None:
    if not isinstance(subject, Call):
        return None
    return await Conversation.get_or_none(id=subject.conversation_id)


async def call_invitee(actor: Actor, subject: Any) -> bool:
    """The actor is invited to the call and still takes part in its conversation."""
    conversation = await _call_conversation(subject)
    return (
        conversation is not None
        and await conversation_active_participant(actor, conversation)
        and await CallInvitation.filter(call_id=subject.id, account_id=actor.account_id).exists()
    )


async def call_manager(actor: Actor, subject: Any) -> bool:
    """The actor manages the call's conversation."""
    conversation = await _call_conversation(subject)
    return conversation is not None and await conversation_manager(actor, conversation)


RULES: dict[Permission, tuple[Rule, ...]] = {
    Permission.PROFESSIONAL_CREATE: (_role(Role.APP_ADMIN),),
    Permission.PROFESSIONAL_MANAGE: (_on_professional(Role.APP_ADMIN),),
    Permission.CLIENT_CREATE: (_role(Role.THERAPIST, Role.SECRETARY),),
    Permission.CLIENT_VIEW: (linked_any, _on_client(Role.SECRETARY), itself),
    Permission.CLIENT_MANAGE: (linked_treating, _on_client(Role.SECRETARY)),
    Permission.TWO_FACTOR_RESET: (linked_treating, _on_professional(Role.APP_ADMIN)),
    Permission.ACCOUNTS_IMPORT: (_role(Role.APP_ADMIN),),
    Permission.ORG_SETTINGS: (_role(Role.APP_ADMIN),),
    Permission.AUDIT_READ: (_role(Role.APP_ADMIN),),
    Permission.OWN_ACCOUNT: (itself,),
    Permission.CLIENT_TOOLS_VIEW: (linked_any, itself),
    Permission.CASELOAD_SEARCH: (_role(Role.THERAPIST, Role.SUPERVISOR, Role.SECRETARY),),
    Permission.CASELOAD_SEARCH_OUTSIDE: (outside_search_allowed,),
    Permission.CASELOAD_LINK: (linked_treating, _on_client(Role.SECRETARY)),
    Permission.CASELOAD_SELF_LINK: (_under_link_policy(LinkPolicy.SELF_LINK),),
    Permission.CASELOAD_REQUEST_LINK: (_under_link_policy(LinkPolicy.CLIENT_CONSENT),),
    Permission.PROFESSIONALS_LIST: (_role(*PROFESSIONAL_ROLES),),
    Permission.TASK_CREATE: (_role(*PROFESSIONAL_ROLES),),
    Permission.TASK_COMPLETE: (task_assignee,),
    Permission.TOOL_CATALOGUE: (_role(Role.APP_ADMIN),),
    Permission.TOOL_ASSIGN: (linked_treating,),
    Permission.HELP_OUTCOMES: (_role(Role.APP_ADMIN),),
    Permission.CONVERSATION_START: (_role(*Role),),
    Permission.CONVERSATION_READ: (conversation_participant,),
    Permission.CONVERSATION_POST: (conversation_active_participant,),
    Permission.CONVERSATION_MANAGE: (conversation_manager,),
    Permission.CONVERSATION_LEAK_REMOVE: (leak_remover,),
    Permission.CONVERSATION_PURGE: (_role(Role.APP_ADMIN),),
    Permission.CALL_START: (conversation_active_participant,),
    Permission.CALL_JOIN: (call_invitee,),
    Permission.CALL_MANAGE: (call_manager,),
}


def _organisation_of(subject: Any) -> int | None:
    if isinstance(subject, Organisation):
        return subject.id
    if isinstance(subject, Account):
        return subject.organisation_id
    if isinstance(subject, Call):
        return subject.organisation_id
    return None


async def allowed(actor: Actor, permission: Permission, subject: Any = None) -> bool:
    """Answer whether ``actor`` holds ``permission`` for ``subject``."""
    if actor.role is None or actor.organisation_id is None:
        return False
    subject_org = _organisation_of(subject)
    if subject_org is not None and subject_org != actor.organisation_id:
        return False
    for rule in RULES[permission]:
        if await rule(actor, subject):
            return True
    return False
