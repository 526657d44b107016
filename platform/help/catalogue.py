"""The actions and facts the platform offers to flows: names, schemas, error codes, permissions.

This module is data only (no database), so that ``lotse flows check`` and
``lotse actions list`` load it cheaply; :mod:`lotse.platform.help.adapters`
runs the actions and answers the facts behind these names.

How subjects are passed
    A flow's ``inputs`` of type ``client``, ``professional`` and ``account`` are
    bound by the platform when a session starts to an **account reference**::

        {id: 17, name: "Eva Jansen", email: "eva@example.org", role: "therapist"}

    and an ``email`` or ``string`` input to a plain string. Every argument
    below that names an account (``account``, ``client``, ``professional``,
    ``hand_over_to``, ``assignee``) takes such a reference, e.g.
    ``{account: "{{ inputs.therapist }}"}``; a bare account id (an integer)
    is accepted too. Results that name accounts return references of the
    same shape, so ``results['search'].clients[0]`` can be passed on.

Arguments are validated against ``args`` before an action runs; a failure is
the error code ``invalid_arguments``. An action's permission is checked by
the platform action itself, as the person running the session: a flow gives
nobody more rights than they have (refusal: ``not_permitted``).
"""

from __future__ import annotations

from typing import Any

from lotse.engine.catalogue import InMemoryCatalogue
from lotse.engine.ports import ActionSpec, FactSpec

#: An account as flows see it (inputs of type client/professional/account, results).
ACCOUNT_REF: dict[str, Any] = {
    "anyOf": [
        {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "email": {"type": "string"},
                "role": {"type": "string"},
            },
            "required": ["id"],
        },
        {"type": "integer"},
    ],
    "description": "an account reference {id, name, email, role} (or an account id)",
}

#: An account reference in a result (always the object form).
ACCOUNT_OUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "email": {"type": "string"},
        "role": {"type": "string"},
    },
    "required": ["id", "name", "role"],
}

EXAMPLE_THERAPIST = {"id": 12, "name": "Eva Jansen", "email": "eva.jansen@example.org", "role": "therapist"}
EXAMPLE_CLIENT = {"id": 31, "name": "Sam de Vries", "email": "sam@example.org", "role": "client"}
EXAMPLE_SECRETARY = {"id": 14, "name": "Lea Bakker", "email": "lea.bakker@example.org", "role": "secretary"}

ROLES = ["client", "therapist", "supervisor", "secretary", "app_admin", "content_editor", "servicedesk"]
ACCOUNT_STATES = ["recent", "dormant", "deactivated", "invited", "invite_expired", "blocked", "missing"]

#: Error codes every action may end with besides its own.
COMMON_ERRORS = ("not_permitted", "not_found", "invalid", "invalid_arguments")


def _args(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _result(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


def _errors(*own: str) -> tuple[str, ...]:
    return (*COMMON_ERRORS, *own)


_ACCOUNT_ARG = _args({"account": ACCOUNT_REF}, ["account"])

ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec(
        name="account.reactivate",
        description="Reactivate a deactivated account: the person can sign in again with their password.",
        args_schema=_ACCOUNT_ARG,
        result_schema=_result({"account": ACCOUNT_OUT, "status": {"const": "active"}}),
        errors=_errors("already_active", "externally_managed"),
        permission="professional.manage (professionals) / client.manage (clients)",
        example_result={"account": EXAMPLE_THERAPIST, "status": "active"},
    ),
    ActionSpec(
        name="account.resend_welcome_mail",
        description="Send a new welcome mail with a set-password link valid 7 days; the earlier link stops working.",
        args_schema=_ACCOUNT_ARG,
        result_schema=_result({"account": ACCOUNT_OUT, "sent_to": {"type": "string"}, "valid_days": {"type": "integer"}}),
        errors=_errors("not_active"),
        permission="professional.manage (professionals) / client.manage (clients)",
        example_result={"account": EXAMPLE_THERAPIST, "sent_to": "eva.jansen@example.org", "valid_days": 7},
    ),
    ActionSpec(
        name="account.send_password_reset",
        description=(
            "Mail a password-reset link (valid 1 hour; setting a password also lifts a block) if an active "
            "account has this address. Safe for signed-out people: the result never says whether one exists. "
            "Give 'email', or 'account' (the account must be visible to the person running the session)."
        ),
        args_schema={
            "type": "object",
            "properties": {"email": {"type": "string"}, "account": ACCOUNT_REF},
            "additionalProperties": False,
            "anyOf": [{"required": ["email"]}, {"required": ["account"]}],
        },
        result_schema=_result({"requested": {"const": True}}),
        errors=_errors(),
        permission="none (anyone, also signed out); with 'account': may view that account",
        example_result={"requested": True},
    ),
    ActionSpec(
        name="account.send_unblock_link",
        description=(
            "Mail a single-use unblock link (valid 24 hours) if a blocked, active account has this address. "
            "Safe for signed-out people: the result never says whether one exists."
        ),
        args_schema=_args({"email": {"type": "string"}}, ["email"]),
        result_schema=_result({"requested": {"const": True}}),
        errors=_errors(),
        permission="none (anyone, also signed out)",
        example_result={"requested": True},
    ),
    ActionSpec(
        name="account.unblock",
        description="Unblock an account that was blocked after failed sign-ins (a professional acting on it).",
        args_schema=_ACCOUNT_ARG,
        result_schema=_result({"account": ACCOUNT_OUT, "blocked": {"const": False}}),
        errors=_errors("not_blocked"),
        permission="professional.manage (professionals) / client.manage (clients)",
        example_result={"account": EXAMPLE_THERAPIST, "blocked": False},
    ),
    ActionSpec(
        name="account.reset_two_factor",
        description="Remove the authenticator app and recovery codes; the owner is told by mail and enrols again.",
        args_schema=_ACCOUNT_ARG,
        result_schema=_result({"account": ACCOUNT_OUT, "two_factor": {"const": "off"}}),
        errors=_errors("two_factor_not_set_up"),
        permission="account.two_factor_reset (app admins for professionals, a linked treating therapist for clients)",
        example_result={"account": EXAMPLE_THERAPIST, "two_factor": "off"},
    ),
    ActionSpec(
        name="account.create_client",
        description=(
            "Create a client account in the session user's organisation and send the welcome mail. A therapist "
            "who creates it is linked to it; a secretary may name the treating 'therapist'. Date of birth as "
            "YYYY-MM-DD or DD-MM-YYYY."
        ),
        args_schema=_args(
            {
                "first_name": {"type": "string"},
                "last_name": {"type": "string"},
                "email": {"type": "string"},
                "gender": {"enum": ["female", "male", "other", "unknown"]},
                "date_of_birth": {"type": "string"},
                "phone": {"type": ["string", "null"]},
                "client_ref": {"type": ["string", "null"]},
                "label": {"type": ["string", "null"]},
                "package": {"type": ["string", "null"]},
                "locale": {"enum": ["de", "nl", None]},
                "therapist": {"anyOf": [ACCOUNT_REF, {"type": "null"}]},
            },
            ["first_name", "last_name", "email", "gender", "date_of_birth"],
        ),
        result_schema=_result({"client": ACCOUNT_OUT, "welcome_sent": {"type": "boolean"}}),
        errors=_errors("email_taken", "client_id_taken"),
        permission="client.create (therapists, secretaries)",
        example_result={"client": EXAMPLE_CLIENT, "welcome_sent": True},
    ),
    ActionSpec(
        name="account.update_email",
        description="Change an account's e-mail address (unique across the whole platform).",
        args_schema=_args({"account": ACCOUNT_REF, "email": {"type": "string"}}, ["account", "email"]),
        result_schema=_result({"account": ACCOUNT_OUT, "changed": {"type": "boolean"}}),
        errors=_errors("email_taken", "externally_managed"),
        permission="professional.manage (professionals) / client.manage (clients)",
        example_result={"account": EXAMPLE_CLIENT, "changed": True},
    ),
    ActionSpec(
        name="caseload.search",
        description=(
            "Search clients by name, e-mail, client ID or date of birth (DD-MM-YYYY). Without 'outside': the "
            "user's own caseload (a secretary's is the organisation). With 'outside: true': the organisation's "
            "clients beyond the caseload, where the organisation allows it, with a 'motivation' (at least 10 "
            "characters) that is logged. 'include_inactive' includes deactivated accounts. Audited as a search. "
            "Each hit is an account reference plus 'active', 'in_caseload' and 'professionals' (who is linked; "
            "outside searches only). An outside search also returns 'search_id', which caseload.link_self and "
            "caseload.request_link need: they act only on clients this search found, under its motivation."
        ),
        args_schema=_args(
            {
                "query": {"type": "string"},
                "outside": {"type": "boolean"},
                "motivation": {"type": "string"},
                "include_inactive": {"type": "boolean"},
            },
            ["query"],
        ),
        result_schema=_result({
            "count": {"type": "integer"},
            "truncated": {"type": "boolean"},
            "clients": {"type": "array", "items": ACCOUNT_OUT},
            "search_id": {"type": ["integer", "null"]},
        }),
        errors=_errors(),
        permission="caseload.search; outside: caseload.search_outside (organisation setting 'search outside caseload')",
        example_result={
            "count": 1,
            "truncated": False,
            "clients": [{**EXAMPLE_CLIENT, "active": True, "in_caseload": False,
                         "professionals": [{**EXAMPLE_THERAPIST, "kind": "treating"}]}],
            "search_id": 812,
        },
        changes=False,
    ),
    ActionSpec(
        name="caseload.link_professional",
        description="Link a therapist (treating or read-only) or a supervisor to a client.",
        args_schema=_args(
            {"client": ACCOUNT_REF, "professional": ACCOUNT_REF, "kind": {"enum": ["treating", "supervising"]}},
            ["client", "professional"],
        ),
        result_schema=_result({"client": ACCOUNT_OUT, "professional": ACCOUNT_OUT, "kind": {"type": "string"}}),
        errors=_errors("already_linked"),
        permission="caseload.link (a treating therapist linked to the client, or a secretary)",
        example_result={"client": EXAMPLE_CLIENT, "professional": EXAMPLE_THERAPIST, "kind": "treating"},
    ),
    ActionSpec(
        name="caseload.link_self",
        description=(
            "Link yourself to a client found outside your caseload (link policy self-link). 'search' is the "
            "'search_id' of the outside search that found the client; its motivation is recorded with the link. "
            "A client that search did not return is refused (not_permitted), and the refusal is audited."
        ),
        args_schema=_args({"client": ACCOUNT_REF, "search": {"type": "integer"}}, ["client", "search"]),
        result_schema=_result({"client": ACCOUNT_OUT, "kind": {"type": "string"}}),
        errors=_errors("already_linked", "not_found_by_search", "outside_search_needed"),
        permission="caseload.self_link (therapists, organisation link policy 'self_link')",
        example_result={"client": EXAMPLE_CLIENT, "kind": "treating"},
    ),
    ActionSpec(
        name="caseload.request_link",
        description=(
            "Ask a client found outside your caseload to accept you as their therapist (link policy client "
            "consent): the client gets a mail and a task; the request expires after 14 days. 'search' is the "
            "'search_id' of the outside search that found the client, as for caseload.link_self."
        ),
        args_schema=_args({"client": ACCOUNT_REF, "search": {"type": "integer"}}, ["client", "search"]),
        result_schema=_result({"client": ACCOUNT_OUT, "request_id": {"type": "integer"},
                               "expires_at": {"type": "string"}}),
        errors=_errors("already_linked", "link_request_pending", "not_found_by_search", "outside_search_needed"),
        permission="caseload.request_link (therapists, organisation link policy 'client_consent')",
        example_result={"client": EXAMPLE_CLIENT, "request_id": 5, "expires_at": "2026-03-19T10:42:00+00:00"},
    ),
    ActionSpec(
        name="caseload.unlink_professional",
        description=(
            "Unlink a professional (yourself or a colleague) from a client. Tools the professional supervises "
            "go to 'hand_over_to' (another treating therapist linked to the client), or are unlinked with "
            "'unlink_tools: true'; with neither the action fails with tools_need_supervisor."
        ),
        args_schema=_args(
            {
                "client": ACCOUNT_REF,
                "professional": ACCOUNT_REF,
                "hand_over_to": {"anyOf": [ACCOUNT_REF, {"type": "null"}]},
                "unlink_tools": {"type": "boolean"},
            },
            ["client", "professional"],
        ),
        result_schema=_result({"client": ACCOUNT_OUT, "professional": ACCOUNT_OUT, "tools": {"type": "integer"},
                               "handed_over_to": {"anyOf": [ACCOUNT_OUT, {"type": "null"}]}}),
        errors=_errors("not_linked", "tools_need_supervisor"),
        permission="client.view for yourself; caseload.link for a colleague",
        example_result={"client": EXAMPLE_CLIENT, "professional": EXAMPLE_THERAPIST, "tools": 0,
                        "handed_over_to": None},
    ),
    ActionSpec(
        name="tasks.create",
        description=(
            "Ask someone for help with a task: to a role of the organisation ('to_role': secretary, app_admin, "
            "...) or to one person ('assignee', e.g. a linked professional), optionally about a 'client', with "
            "a 'note'. The task names the help session."
        ),
        args_schema={
            **_args(
                {
                    "to_role": {"enum": ROLES[1:]},
                    "assignee": {"anyOf": [ACCOUNT_REF, {"type": "null"}]},
                    "client": {"anyOf": [ACCOUNT_REF, {"type": "null"}]},
                    "note": {"type": "string"},
                },
                ["note"],
            ),
            "anyOf": [{"required": ["to_role"]}, {"required": ["assignee"]}],
        },
        result_schema=_result({"task_id": {"type": "integer"}, "to": {"type": "string"}}),
        errors=_errors(),
        permission="task.create (every professional)",
        example_result={"task_id": 7, "to": "secretary"},
    ),
    ActionSpec(
        name="conversations.start",
        description=(
            "Start a conversation, the request pre-written: with one person ('with', e.g. a linked professional) "
            "or with everyone of a role in the organisation ('with_role': secretary, app_admin, ...), with a "
            "'subject' and the first 'message'. The person running the session manages the conversation. Who "
            "may talk to whom applies: clients only with their linked therapists, supervisors never with clients "
            "(refusal: cannot_contact); nobody_to_contact when nobody holds the role."
        ),
        args_schema={
            **_args(
                {
                    "with": {"anyOf": [ACCOUNT_REF, {"type": "null"}]},
                    "with_role": {"enum": ROLES[1:]},
                    "subject": {"type": "string"},
                    "message": {"type": "string"},
                },
                ["subject", "message"],
            ),
            "anyOf": [{"required": ["with"]}, {"required": ["with_role"]}],
        },
        result_schema=_result({"conversation_id": {"type": "integer"}, "url": {"type": "string"},
                               "participants": {"type": "array", "items": ACCOUNT_OUT}}),
        errors=_errors("cannot_contact", "nobody_to_contact"),
        permission="conversation.start (everyone signed in), within who may talk to whom",
        example_result={"conversation_id": 9, "url": "/conversations/9", "participants": [EXAMPLE_SECRETARY]},
    ),
)

FACTS: tuple[FactSpec, ...] = (
    FactSpec(
        name="account.state",
        description=(
            "recent (signed in within 90 days) / dormant (no sign-in for 90 days, or never signed in after the "
            "welcome link was used) / deactivated / invited (welcome link valid, no password yet) / "
            "invite_expired (no password, no valid welcome link) / blocked (after failed sign-ins) / missing "
            "(no account given, or none the user may see)."
        ),
        args_schema=_args({"account": {"anyOf": [ACCOUNT_REF, {"type": "null"}]}}, ["account"]),
        result_schema={"enum": ACCOUNT_STATES},
        permission="may view the account (else 'missing')",
        example_result="recent",
    ),
    FactSpec(
        name="account.two_factor",
        description="enabled / required_not_enrolled (the organisation requires it, not set up yet) / off.",
        args_schema=_ACCOUNT_ARG,
        result_schema={"enum": ["off", "enabled", "required_not_enrolled"]},
        permission="may view the account (else null)",
        example_result="enabled",
    ),
    FactSpec(
        name="account.externally_managed",
        description="Whether the account comes from the coupled record system (then the organisation's "
                    "org.settings.external_accounts says what may be changed here).",
        args_schema=_ACCOUNT_ARG,
        result_schema={"type": "boolean"},
        permission="may view the account (else null)",
        example_result=False,
    ),
    FactSpec(
        name="account.find_by_email",
        description=(
            "Where an e-mail address is in use, as far as the user may know: in_caseload (a client the user "
            "may see, or the user's own address) / elsewhere (some account on the platform) / none. Signed-out "
            "people get null: it never reveals anything to them."
        ),
        args_schema=_args({"email": {"type": ["string", "null"]}}, ["email"]),
        result_schema={"enum": ["in_caseload", "elsewhere", "none", None]},
        permission="signed in (else null)",
        example_result="elsewhere",
    ),
    FactSpec(
        name="caseload.client_by_email",
        description="The client with this e-mail address as an account reference, if the user may see that "
                    "client (linked, or a secretary of the organisation); else null.",
        args_schema=_args({"email": {"type": ["string", "null"]}}, ["email"]),
        result_schema={"anyOf": [ACCOUNT_OUT, {"type": "null"}]},
        permission="client.view on the client (else null)",
        example_result=EXAMPLE_CLIENT,
    ),
    FactSpec(
        name="caseload.is_linked",
        description="Whether a professional (default: the user) is linked to the client.",
        args_schema=_args({"client": ACCOUNT_REF, "professional": {"anyOf": [ACCOUNT_REF, {"type": "null"}]}},
                          ["client"]),
        result_schema={"type": "boolean"},
        permission="signed-in professional of the client's organisation (else null)",
        example_result=True,
    ),
    FactSpec(
        name="caseload.linked_professionals",
        description="Who is linked to the client: account references with 'kind' (treating/supervising), "
                    "therapists first. Null when the user may not view the client.",
        args_schema=_args({"client": ACCOUNT_REF}, ["client"]),
        result_schema={"type": ["array", "null"], "items": ACCOUNT_OUT},
        permission="client.view on the client",
        example_result=[{**EXAMPLE_THERAPIST, "kind": "treating"}],
    ),
    FactSpec(
        name="caseload.supervised_tools",
        description="How many active tools of the client a professional (default: the user) supervises; "
                    "non-zero means unlinking needs a hand-over or 'unlink_tools'.",
        args_schema=_args({"client": ACCOUNT_REF, "professional": {"anyOf": [ACCOUNT_REF, {"type": "null"}]}},
                          ["client"]),
        result_schema={"type": ["integer", "null"]},
        permission="client.view on the client (else null)",
        example_result=0,
    ),
    FactSpec(
        name="caseload.pending_link_request",
        description="Whether the user has a link request to this client still waiting for an answer.",
        args_schema=_args({"client": ACCOUNT_REF}, ["client"]),
        result_schema={"type": ["boolean", "null"]},
        permission="signed-in professional of the client's organisation (else null)",
        example_result=False,
    ),
    FactSpec(
        name="org.settings",
        description=(
            "The organisation's settings: video_calls, participant_cap, search_outside_caseload, link_policy "
            "(read_only/self_link/client_consent), external_accounts (protect/never/always), phone_rule, "
            "client_id_rule (optional/required), two_factor (optional/required/off), sms_invitations, "
            "data_leak_deletion, default_language. Also available as org.settings in every expression."
        ),
        args_schema={"type": "object", "properties": {}, "additionalProperties": False},
        result_schema={"type": "object"},
        permission="signed in, or the organisation of a signed-out session",
        example_result={
            "video_calls": True, "participant_cap": 12, "search_outside_caseload": False,
            "link_policy": "read_only", "external_accounts": "protect", "phone_rule": "optional",
            "client_id_rule": "optional", "two_factor": "optional", "sms_invitations": False,
            "data_leak_deletion": True, "default_language": "nl",
        },
    ),
)


def platform_catalogue() -> InMemoryCatalogue:
    """Return the catalogue of every action and fact the platform offers to flows."""
    return InMemoryCatalogue(ACTIONS, FACTS)


#: Input types bound to an account reference when a session starts.
ACCOUNT_INPUT_TYPES = frozenset({"client", "professional", "account"})
