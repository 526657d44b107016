"""Demo conversations: the therapist with the client, and with the secretary (idempotent)."""

from __future__ import annotations

from typing import Any

from lotse.platform.accounts.models import Account, Role
from lotse.platform.actions import Services
from lotse.platform.conversations.actions import do_post_message, do_start_conversation
from lotse.platform.conversations.models import Conversation
from lotse.platform.permissions import Actor

# Demo content is written in the organisation's language; it is data, not interface text.
TEXTS = {
    "nl": [("Intakegesprek", "Welkom! Zullen we volgende week dinsdag om 10 uur beginnen?",
            "Ja, dat komt goed uit. Tot dan!"),
           ("Nieuwe aanmelding", "Kun je de nieuwe cliënt van vanochtend aan mij koppelen?", "Is gebeurd.")],
    "de": [("Erstgespräch", "Willkommen! Wollen wir nächste Woche Dienstag um 10 Uhr beginnen?",
            "Ja, das passt gut. Bis dann!"),
           ("Neue Anmeldung", "Können Sie die neue Klientin von heute Morgen mit mir verknüpfen?", "Erledigt.")],
}


async def seed_conversations(svc: Services, organisation: Any, people: dict[Role, Account], language: str) -> None:
    therapist = people[Role.THERAPIST]
    partners = [people[Role.CLIENT], people[Role.SECRETARY]]
    for (subject, first, answer), partner in zip(TEXTS.get(language, TEXTS["nl"]), partners, strict=True):
        if await Conversation.filter(organisation_id=organisation.id, subject=subject).exists():
            continue
        conversation = await do_start_conversation(svc, Actor.of(therapist, via="cli"), subject=subject,
                                                   participants=[partner], first_message=first)
        await do_post_message(svc, Actor.of(partner, via="cli"), conversation, answer)
