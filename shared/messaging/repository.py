"""Rows of one table for one batch: read in one statement before the handlers run, held in an identity
map while they run, written back in one statement per kind (insert, update) after they ran.

A service's repository says how a row becomes its domain object and back; the statements are built
here once, at import, from the table's SQLAlchemy definition. Handlers see only `get`, `add` and
`save`: no SQL, no round trip. Reads take the rows `FOR UPDATE` in key order, so two batches (two
instances) that need the same rows queue instead of deadlocking.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql

from shared.messaging import metrics
from shared.messaging.driver import cursor, json_rows

log = logging.getLogger("shop.repository")

K = TypeVar("K")
E = TypeVar("E")
_DIALECT = postgresql.dialect()


class BatchStatements:
    """The set-based statements of one table; rows travel as one JSON parameter (driver.json_rows),
    unpacked into the table's own column types."""

    def __init__(
        self,
        table: Table,
        key: str,
        *,
        created_with: Mapping[str, object] | None = None,
        created_from: Sequence[str] = (),
        select: str | None = None,
    ) -> None:
        self.table = table
        self.key = key
        self._types = {c.name: c.type.compile(dialect=_DIALECT) for c in table.columns}
        self.columns = [c.name for c in table.columns]
        name = table.name
        key_type = self._types[key]
        # `select` replaces the default where a row's entity takes more than its table (a join); it
        # takes the keys as its one parameter, and must lock in key order too.
        self.select = select or (
            f"SELECT {', '.join(self.columns)} FROM {name} WHERE {key} = ANY(%s::{key_type}[]) "
            f"ORDER BY {key} FOR UPDATE"
        )
        # Rows created on first sight (an aggregate any of several facts may start), with constant
        # defaults; concurrent creators of one key take turns on the unique index.
        # `created_with` are constants, `created_from` columns given per key by whoever wants it.
        self.create: str | None = None
        self.created_with = dict(created_with or {})
        self.created_from = tuple(created_from)
        if created_with is not None:
            per_key = (key, *self.created_from)
            selected = [f"u.{c}" for c in per_key] + [f"%(const_{c})s" for c in self.created_with]
            self.create = (
                f"INSERT INTO {name} ({', '.join((*per_key, *self.created_with))}) "
                f"SELECT {', '.join(selected)} FROM {self._recordset(per_key, '%(rows)s')} "
                f"ORDER BY u.{key} ON CONFLICT DO NOTHING"
            )
        self._inserts: dict[tuple[tuple[str, ...], str], str] = {}
        self._updates: dict[tuple[str, ...], str] = {}

    def insert(self, columns: Sequence[str], on_conflict: str = "") -> str:
        """INSERT of many rows, given as one JSON list; `on_conflict` e.g. 'ON CONFLICT DO NOTHING'."""
        cache = (tuple(columns), on_conflict)
        if cache not in self._inserts:
            self._inserts[cache] = (
                f"INSERT INTO {self.table.name} ({', '.join(columns)}) "
                f"SELECT {', '.join(f'u.{c}' for c in columns)} FROM {self._recordset(columns)} {on_conflict}"
            )
        return self._inserts[cache]

    def update(self, columns: Sequence[str], extra: str = "") -> str:
        """UPDATE of many rows by key; `extra` adds constant assignments, e.g. 'updated_at = now()'."""
        cols = tuple(columns)
        if cols not in self._updates:
            sets = [f"{c} = u.{c}" for c in cols] + ([extra] if extra else [])
            self._updates[cols] = (
                f"UPDATE {self.table.name} SET {', '.join(sets)} "
                f"FROM {self._recordset((self.key, *cols))} WHERE {self.table.name}.{self.key} = u.{self.key}"
            )
        return self._updates[cols]

    def _recordset(self, columns: Sequence[str], parameter: str = "%s") -> str:
        fields = ", ".join(f"{c} {self._types[c]}" for c in columns)
        return f"json_to_recordset({parameter}::json) AS u({fields})"


class Repository(ABC, Generic[K, E]):
    """One table's rows for the batch in hand, by key.

    `want` keys (the unit of work's prefetch does, per event), `load` them all in one statement,
    then `get`/`add`/`save` in memory; `flush` writes what changed. A `get` of a key nobody wanted
    still works, with a round trip of its own: counted (`shop_repository_misses_total`), since it
    means a declaration of what handlers read is missing."""

    statements: ClassVar[BatchStatements]
    # Columns written by save() (the key excluded); None: every column but the key.
    saved_columns: ClassVar[Sequence[str] | None] = None
    # Constant assignments added to every update, e.g. "updated_at = now()".
    on_save: ClassVar[str] = ""
    # How add() inserts: e.g. "ON CONFLICT (order_id) DO NOTHING" where a row may exist already.
    on_add_conflict: ClassVar[str] = ""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection
        self._sql = cursor(connection)
        self._rows: dict[K, E | None] = {}
        self._wanted: set[K] = set()
        self._added: dict[K, E] = {}
        self._saved: dict[K, E] = {}
        self._created_from: dict[K, dict[str, object]] = {}

    # -- what a service says ----------------------------------------------------------------------

    @abstractmethod
    def entity(self, row: Any) -> E:
        """The domain object of a row."""

    @abstractmethod
    def key_of(self, entity: E) -> K: ...

    @abstractmethod
    def row(self, entity: E) -> dict[str, Any]:
        """The columns of an entity, as add() inserts and save() updates them."""

    # -- what handlers use ------------------------------------------------------------------------

    def get(self, key: K) -> E | None:
        if key not in self._rows:
            metrics.REPOSITORY_MISSES.labels(self.statements.table.name).inc()
            log.debug("%s: key %s read without being declared", self.statements.table.name, key)
            self._wanted.add(key)
            self.load()
        return self._rows[key]

    def add(self, entity: E) -> None:
        key = self.key_of(entity)
        self._rows[key] = entity
        self._added[key] = entity

    def save(self, entity: E) -> None:
        key = self.key_of(entity)
        self._rows[key] = entity
        if key in self._added:
            self._added[key] = entity  # inserted as it is now
        else:
            self._saved[key] = entity

    # -- what the unit of work does ---------------------------------------------------------------

    def want(self, keys: Iterable[K]) -> None:
        self._wanted.update(keys)

    def want_one(self, key: K, **created_from: object) -> None:
        """One key, with the values its row is created with if it is new (`created_from` columns)."""
        self._wanted.add(key)
        self._created_from.setdefault(key, created_from)

    def loaded(self) -> Iterable[E]:
        return (e for e in self._rows.values() if e is not None)

    def load(self) -> None:
        """Everything wanted and not yet read, in one statement (two for rows created on first sight)."""
        keys = sorted(k for k in self._wanted if k not in self._rows)  # type: ignore[type-var]
        self._wanted.clear()
        if not keys:
            return
        st = self.statements
        if st.create is not None:
            rows = [{st.key: k, **self._created_from.get(k, {})} for k in keys]
            params: dict[str, object] = {"rows": json_rows(rows)}
            params |= {f"const_{c}": v for c, v in st.created_with.items()}
            self._sql.execute(st.create, params)
        found = {}
        for row in self._sql.execute(st.select, (keys,)).fetchall():
            entity = self.entity(row)
            found[self.key_of(entity)] = entity
        for key in keys:
            self._rows[key] = found.get(key)

    def load_where(self, condition: str, params: Sequence[object], limit: int) -> list[tuple[E, Any]]:
        """Up to `limit` rows meeting `condition` (SQL on the table's columns, `%s` parameters) that no
        other transaction holds, taken FOR UPDATE: for work the clock starts (timers.py), where nobody
        names the keys in advance. Each as its entity, which joins the identity map to be saved and
        flushed as usual, and its row."""
        st = self.statements
        rows = self._sql.execute(
            f"SELECT {', '.join(st.columns)} FROM {st.table.name} WHERE {condition} "
            f"ORDER BY {st.key} LIMIT %s FOR UPDATE SKIP LOCKED",
            (*params, limit),
        ).fetchall()
        found = [(self.entity(row), row) for row in rows]
        for entity, _ in found:
            self._rows[self.key_of(entity)] = entity
        return found

    def insert_now(self, entities: Iterable[E], on_conflict: str = "") -> None:
        """Outside a batch (seeding): insert these at once, in one statement."""
        rows = [self.row(e) for e in entities]
        if rows:
            st, columns = self.statements, list(rows[0])
            self._sql.execute(st.insert(columns, on_conflict), (json_rows(rows),))

    def flush(self) -> None:
        st = self.statements
        if self._added:
            rows = [self.row(e) for e in self._added.values()]
            columns = list(rows[0])
            self._sql.execute(st.insert(columns, self.on_add_conflict), (json_rows(rows),))
            self._added.clear()
        if self._saved:
            rows = [self.row(e) for e in self._saved.values()]
            columns = list(self.saved_columns or [c for c in rows[0] if c != st.key])
            self._sql.execute(st.update(columns, self.on_save), (json_rows(rows),))
            self._saved.clear()


class Appender(Generic[E]):
    """An insert-only table (a history, a log): rows added by handlers, inserted in one statement."""

    statements: ClassVar[BatchStatements]
    on_conflict: ClassVar[str] = ""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection
        self._sql = cursor(connection)
        self._rows: list[dict[str, Any]] = []

    def append(self, row: dict[str, Any]) -> None:
        self._rows.append(row)

    def want(self, keys: Iterable[Any]) -> None:
        raise TypeError("nothing is read from an insert-only table")

    def load(self) -> None:
        pass

    def flush(self) -> None:
        if self._rows:
            st, columns = self.statements, list(self._rows[0])
            self._sql.execute(st.insert(columns, self.on_conflict), (json_rows(self._rows),))
            self._rows.clear()
