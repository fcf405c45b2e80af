"""The unit of work a handler gets: one database transaction for its writes, the events it emits and
the record that the message was handled. Services subclass it to add their repositories."""

from __future__ import annotations

from sqlalchemy import Connection


class UnitOfWork:
    def __init__(self, connection: Connection) -> None:
        # The runtime begins and commits the transaction: a handler never commits by itself.
        self.connection = connection
