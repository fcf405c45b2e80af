"""How a message can fail, and what the runtime does about each kind."""

from __future__ import annotations


class PoisonMessage(Exception):
    """This message can never be handled as it is: dead-letter it and move on."""

    kind = "poison"


class UndecodableMessage(PoisonMessage):
    kind = "undecodable"


class UnknownSchema(PoisonMessage):
    kind = "unknown-schema"


class InvalidRecord(PoisonMessage):
    kind = "invalid-record"


class UnknownEventType(PoisonMessage):
    kind = "unknown-event-type"


class HandlerRejected(PoisonMessage):
    """Raised by a handler for a message it will never accept (a broken invariant, not a business outcome:
    business outcomes such as an insufficient balance are events, e.g. PaymentFailed)."""

    kind = "handler-rejected"


class RetriesExhausted(PoisonMessage):
    """A failure that kept happening: the dead letter names the cause's class, not this one."""

    kind = "retries-exhausted"

    def __init__(self, cause: BaseException, attempts: int) -> None:
        super().__init__(f"{type(cause).__name__}: {cause} (after {attempts} attempts)")
        self.cause = cause


class TransientError(Exception):
    """Worth retrying in place: the same message may well succeed a moment later."""
