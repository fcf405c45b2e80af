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


class ForeignSchema(PoisonMessage):
    """The writer schema is not one of our contract's: another subject, another format, not a record."""

    kind = "foreign-schema"


class UnreadableSchema(PoisonMessage):
    """The writer schema is ours in form but unsafe to read with (too deep, items of no size)."""

    kind = "unreadable-schema"


class InvalidHeader(PoisonMessage):
    """A header the runtime routes by is malformed, names no known event type, or contradicts the record."""

    kind = "invalid-header"


class Misrouted(PoisonMessage):
    """A well-formed event on a topic where its type does not belong."""

    kind = "misrouted"


class ForeignSource(PoisonMessage):
    """An event whose envelope names a source other than the owner of the topic it came on: ACLs say
    who may write a topic, not what a writer may claim to be."""

    kind = "foreign-source"


class OversizedEvent(PoisonMessage):
    """A handler decided an event too large for the broker: the incoming message fails, not the relay."""

    kind = "oversized-event"


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
