"""What happens to a call, as events published after commit.

They travel on the conversation's topic (``conversation.<id>``), so the
conversation page's WebSocket (``conversations/ws.py``) forwards them to the
people who may read the conversation: that is how "join call" appears live.
An invitation also travels on the invitee's own topic (``account.<id>``).
The call page's signalling socket listens for ``call.ended`` to close the
call for everybody, whichever worker or media process hosts it.
"""

from __future__ import annotations

from dataclasses import dataclass

from lotse.platform.events import Event


@dataclass(frozen=True)
class CallEvent(Event):
    conversation_id: int
    call_id: int

    @property
    def topic(self) -> str:
        return f"conversation.{self.conversation_id}"


@dataclass(frozen=True)
class CallStarted(CallEvent):
    name = "call.started"
    started_by_id: int | None
    started_by_name: str


@dataclass(frozen=True)
class CallJoined(CallEvent):
    name = "call.joined"
    account_id: int
    attending: int  # people in the call after the join


@dataclass(frozen=True)
class CallLeft(CallEvent):
    name = "call.left"
    account_id: int
    attending: int


@dataclass(frozen=True)
class CallEnded(CallEvent):
    name = "call.ended"


@dataclass(frozen=True)
class CallInvited(CallEvent):
    """Told to the invitee (topic ``account.<id>``)."""

    name = "call.invited"
    account_id: int
    invited_by_name: str

    @property
    def topic(self) -> str:
        return f"account.{self.account_id}"
