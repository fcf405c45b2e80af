"""Events to bytes and back: Avro in Confluent's wire format, schemas from the registry.

Wire format: magic byte 0, the schema's 4-byte registry id, then the Avro body: written and read by
functions made for each of our schemas at start-up (avro_compiled.py; fastavro's bytes), by fastavro
for a message written with any other version of a schema. Subjects
follow the topic-record-name strategy (`<topic>-<record name>`), because one topic carries every event
type of its owning service. Schemas are registered, and each subject's compatibility set, by
provisioning (shared/provision/); a service only looks up, at start-up, the ids of the schemas it
publishes; per message there is only dictionary look-ups and (de)serialisation. A schema id a message
names is read with only once the registry says it is a version of our contract's subject for its
record (writer_schemas.py has the other checks); refused ids are remembered a minute.
"""

from __future__ import annotations

import functools
import io
import logging
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from pydantic import ValidationError

from shared.access import REGISTRY_READER
from shared.contracts import EVENT_TYPES, Envelope, Event
from shared.contracts.schemas import avro_schema, avro_schema_json
from shared.messaging.avro_compiled import Decoder, Encoder, Unsupported, compile_decoder, compile_encoder
from shared.messaging.errors import (
    ForeignSchema,
    InvalidRecord,
    PoisonMessage,
    TransientError,
    UndecodableMessage,
    UnknownEventType,
    UnknownSchema,
    UnreadableSchema,
)
from shared.messaging.writer_schemas import parse_writer_schema, record_name
from shared.settings import Settings
from shared.topics import events_topic

_T = TypeVar("_T")
log = logging.getLogger("shop.codec")

_HEADER = struct.Struct(">bI")
_MAGIC = 0
_BY_RECORD_NAME = {t.record_name(): t for t in EVENT_TYPES.values()}
# Schema ids refused as poison are not asked about again for a while; the memory of them is bounded.
_REFUSED_FOR = 60.0
_MAX_REFUSED = 1024


def schema_registry(url: str, login: str | None = None, timeout: float = 10) -> SchemaRegistryClient:
    """A registry client that gives up on a silent server (the client's default is to wait forever);
    `login`: HTTP basic `user:password` (Settings.registry_login)."""
    config: dict[str, object] = {"url": url, "timeout": timeout}
    if login:
        config["basic.auth.user.info"] = login
    return SchemaRegistryClient(config)


def registry_as(settings: Settings, user: str = REGISTRY_READER) -> SchemaRegistryClient:
    """The settings' registry, logged in as `user` (a reader unless said otherwise)."""
    return schema_registry(settings.schema_registry_url, settings.registry_login(user))


def subject_name(event_type: type[Event]) -> str:
    return f"{events_topic(event_type.owner)}-{event_type.record_name()}"


@dataclass(frozen=True, slots=True)
class Registered:
    """One event type as the registry knows it."""

    event_type: type[Event]
    subject: str
    schema_id: int
    version: int
    parsed: Any
    encode: Encoder  # the record (its envelope a dict under "envelope") to the message's bytes


@dataclass(frozen=True, slots=True)
class _Reader:
    event_type: type[Event]
    writer: Any
    # None when the writer's schema is our own: fastavro then skips schema resolution.
    reader: Any
    type_name: str
    # The writer's schema is our own: the decoder made for it at start-up reads the message.
    decode: Decoder | None = None


class EventCodec:
    def __init__(self, registry: SchemaRegistryClient) -> None:
        self._registry = registry
        self._registered: dict[type[Event], Registered] = {}
        self._readers: dict[int, _Reader] = {}
        self._refused: dict[int, tuple[float, PoisonMessage]] = {}

    def register(self, event_types: Iterable[type[Event]]) -> None:
        """Register these schemas (idempotent): provisioning's job, and a publisher's of its own
        subjects (tools, tests); the subject's compatibility level is provisioning's alone."""
        for event_type in event_types:
            schema = Schema(avro_schema_json(event_type), "AVRO")
            self._registry.register_schema(subject_name(event_type), schema)
        self.look_up(event_types)

    def look_up(self, event_types: Iterable[type[Event]]) -> None:
        """Find the registered id of each schema this process publishes, at start-up. A schema not
        registered (provisioning not run, or the code ahead of it) fails here, not at the first event."""
        for event_type in event_types:
            subject = subject_name(event_type)
            schema = Schema(avro_schema_json(event_type), "AVRO")
            try:
                found = self._registry.lookup_schema(subject, schema)
            except SchemaRegistryError as exc:
                if exc.http_status_code != 404:
                    raise
                raise LookupError(
                    f"{subject}: this schema of {event_type.__name__} is not registered; provisioning "
                    "registers every schema (`python -m shared.provision schemas`)"
                ) from exc
            schema_id, version = found.schema_id, found.version
            parsed = fastavro.parse_schema(avro_schema(event_type))
            encode = _encoder(event_type, parsed, _HEADER.pack(_MAGIC, schema_id))
            self._registered[event_type] = Registered(event_type, subject, schema_id, version, parsed, encode)
            self._readers[schema_id] = _Reader(
                event_type,
                _for_reading(avro_schema(event_type)),
                None,
                event_type.type_name(),
                _decoder(event_type),
            )

    def warm(self, event_types: Iterable[type[Event]]) -> None:
        """Load the readers of what this process consumes now, not on its first message."""
        for event_type in event_types:
            try:
                latest = self._registry.get_latest_version(subject_name(event_type))
            except SchemaRegistryError as exc:
                if exc.http_status_code == 404:
                    continue  # nobody published it yet; its reader loads on first sight
                raise
            if latest.schema_id not in self._readers:
                try:
                    self._load_reader(latest.schema_id)
                except PoisonMessage as exc:  # its messages will be dead-lettered: no reason not to start
                    log.error("the latest schema of %s is refused: %s", subject_name(event_type), exc)

    def registered(self, event_type: type[Event]) -> Registered:
        try:
            return self._registered[event_type]
        except KeyError:
            raise LookupError(f"{event_type.__name__} was not registered at start-up") from None

    def encode(self, envelope: Envelope, event: Event) -> bytes:
        return self.encode_record(type(event), {"envelope": envelope.model_dump(), **event.model_dump()})

    def encode_record(self, event_type: type[Event], record: dict[str, Any]) -> bytes:
        """An event already laid out as its Avro record (the envelope a dict under "envelope")."""
        return self.registered(event_type).encode(record)

    def decode(self, data: bytes | None) -> tuple[Envelope, Event]:
        """Raises a PoisonMessage for what can never decode, TransientError when the registry is away."""
        if data is None or len(data) < _HEADER.size:
            raise UndecodableMessage("message is empty or shorter than the wire-format header")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            raise UndecodableMessage(f"magic byte {magic}, expected 0: not Confluent Avro wire format")
        reader = self._readers.get(schema_id) or self._load_reader(schema_id)
        try:
            if reader.decode is not None:
                record = reader.decode(data)
            else:
                record = fastavro.schemaless_reader(
                    io.BytesIO(data[_HEADER.size :]), reader.writer, reader.reader
                )
        except Exception as exc:  # fastavro raises many kinds on corrupt input
            raise UndecodableMessage(f"Avro body does not decode with schema {schema_id}: {exc!r}") from exc
        if not isinstance(record, dict) or "envelope" not in record:
            raise InvalidRecord(f"schema {schema_id} has no envelope: not an event of this system")
        try:
            envelope = Envelope.model_validate(record.pop("envelope"))
            event = reader.event_type.model_validate(record)
        except ValidationError as exc:
            raise InvalidRecord(_summary(exc)) from exc
        except Exception as exc:  # whatever a validator raises on a value nobody foresaw
            raise InvalidRecord(f"record of schema {schema_id} does not validate: {exc!r}") from exc
        if envelope.event_type != reader.type_name:
            # Handlers are chosen by the envelope's type: it must name the record it travels with.
            raise InvalidRecord(f"envelope says {envelope.event_type}, the record is {reader.type_name}")
        return envelope, event

    def _load_reader(self, schema_id: int) -> _Reader:
        """Read with a writer schema only once the registry vouches for it (writer_schemas.py)."""
        refused = self._refused.get(schema_id)
        if refused is not None and refused[0] > time.monotonic():
            raise refused[1]
        try:
            reader = self._vetted_reader(schema_id)
        except PoisonMessage as exc:
            # Remembered a while: a stream of such messages costs the registry one look-up a minute.
            if len(self._refused) >= _MAX_REFUSED:
                self._refused.clear()
            self._refused[schema_id] = (time.monotonic() + _REFUSED_FOR, exc)
            raise
        self._readers[schema_id] = reader
        return reader

    def _vetted_reader(self, schema_id: int) -> _Reader:
        registered = self._ask(lambda: self._registry.get_schema(schema_id), schema_id)
        writer_json = parse_writer_schema(schema_id, registered.schema_type, registered.schema_str or "")
        name = record_name(writer_json)
        event_type = _BY_RECORD_NAME.get(name)
        if event_type is None:
            raise UnknownEventType(f"schema id {schema_id} is {name}, not an event this system knows")
        subject = subject_name(event_type)
        versions = self._ask(lambda: self._registry.get_schema_versions(schema_id), schema_id)
        if not any(v.subject == subject for v in versions):
            where = ", ".join(sorted({v.subject for v in versions})) or "no subject"
            raise ForeignSchema(
                f"schema id {schema_id} ({name}) is registered under {where}, not under {subject}"
            )
        ours = avro_schema(event_type)
        same = fastavro.schema.to_parsing_canonical_form(
            writer_json
        ) == fastavro.schema.to_parsing_canonical_form(ours)
        try:
            writer = _for_reading(writer_json)
        except Exception as exc:  # fastavro refuses it: whoever registered it, it cannot be read
            raise UnreadableSchema(f"schema id {schema_id} does not parse as Avro: {exc!r}") from exc
        if same:
            return _Reader(event_type, writer, None, event_type.type_name(), _decoder(event_type))
        return _Reader(event_type, writer, _for_reading(ours), event_type.type_name())

    @staticmethod
    def _ask(call: Callable[[], _T], schema_id: int) -> _T:
        try:
            return call()
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise UnknownSchema(f"schema id {schema_id} is not in the registry") from exc
            raise TransientError(f"schema registry: {exc}") from exc
        except Exception as exc:  # connection errors from the HTTP client
            raise TransientError(f"schema registry unreachable: {exc!r}") from exc


def _encoder(event_type: type[Event], parsed: Any, header: bytes) -> Encoder:
    try:
        return compile_encoder(avro_schema(event_type), header)
    except Unsupported as exc:
        log.warning("%s is written by fastavro: %s", event_type.__name__, exc)

    def encode(record: dict[str, Any]) -> bytes:
        buf = io.BytesIO()
        buf.write(header)
        fastavro.schemaless_writer(buf, parsed, record)
        return buf.getvalue()

    return encode


@functools.cache
def _decoder(event_type: type[Event]) -> Decoder | None:
    """The decoder of our own schema of this event type, made once per process; its uuid fields
    read as text, as `_for_reading` has them. None: fastavro reads it."""
    try:
        return compile_decoder(avro_schema(event_type), skip=_HEADER.size, uuid_as_text=True)
    except Unsupported as exc:
        log.warning("%s is read by fastavro: %s", event_type.__name__, exc)
        return None


def _for_reading(schema: Any) -> Any:
    """A schema parsed for decoding, its uuid fields read as the strings they are on the wire.

    pydantic turns them into UUIDs in a fifth of the time fastavro's logical-type conversion takes;
    the bytes read are the same (Avro's uuid is an annotated string)."""

    def plain(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: plain(v) for k, v in node.items() if not (k == "logicalType" and v == "uuid")}
        if isinstance(node, list):
            return [plain(v) for v in node]
        return node

    return fastavro.parse_schema(plain(schema))


def _summary(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors()[:5])
