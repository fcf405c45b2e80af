"""The flow map (services/shopctl/flow.py) against the code it is generated from: the committed files
and README's diagram are what the code gives, the AsyncAPI document holds together, and what it says
agrees with the handler tables, the ACLs and the topic catalogue."""

from __future__ import annotations

import importlib
import subprocess
import sys
from typing import Any

import pytest
import yaml

from services.shopctl import flow
from shared.access import HEARS
from shared.contracts import (
    EVENT_TYPES,
    Envelope,
    Event,
    OrderCancelled,
    OrderPlaced,
    PaymentCompleted,
    PaymentFailed,
    PaymentRefunded,
)
from shared.messaging import dead_letters
from shared.messaging.timers import Decided
from shared.settings import PROCESSES, REPO_ROOT, SERVICES
from shared.topics import TOPICS, dead_letter_topic, events_topic

FIX = "run `make flow` and commit what it writes"


@pytest.fixture(scope="module")
def the_flow() -> flow.Flow:
    return flow.read_flow()


@pytest.fixture(scope="module")
def files(the_flow: flow.Flow) -> dict[str, str]:
    return flow.render(the_flow)


@pytest.fixture(scope="module")
def doc(files: dict[str, str]) -> dict[str, Any]:
    return yaml.safe_load(files[flow.ASYNCAPI_FILE])


@pytest.mark.parametrize("name", [flow.ASYNCAPI_FILE, flow.MERMAID_FILE])
def test_the_committed_files_are_what_the_code_gives(files, name):
    path = flow.DEFAULT_OUT / name
    assert path.is_file(), f"{path} is missing: {FIX}"
    assert path.read_text() == files[name], f"{path} drifted from the code: {FIX}"


def test_the_readme_shows_the_generated_diagram(files):
    text = flow.README.read_text()
    start, end = flow.readme_block(text)
    assert text[start:end] == f"\n```mermaid\n{files[flow.MERMAID_FILE]}```\n", (
        f"README's diagram drifted: {FIX}"
    )


def test_the_output_is_the_same_every_time(the_flow, files):
    assert flow.render(flow.read_flow()) == files == flow.render(the_flow)


def test_the_yaml_says_what_the_document_is(the_flow, doc):
    assert doc == flow.asyncapi(the_flow)


@pytest.mark.parametrize(
    "text",
    ["plain", "a: b", "#x", "- x", "true", "No", "null", "~", "3.0.0", "12", "", " x", "x ", "é ü", '"q"',
     "a\nb", "{x}", "[x]", "*x", "&x", "!x", "%x", "@x", "`x`", "x #y", "it's", "tab\there", "\\"],
)  # fmt: skip
def test_the_yaml_writer_keeps_any_text_as_it_is(text):
    value = {"k": text, text or "empty": [text, {"n": 1, "b": True, "z": None, "e": [], "d": {}}]}
    assert yaml.safe_load(flow.to_yaml(value)) == value


# --- The AsyncAPI document's structure ---------------------------------------------------------------


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def test_the_document_is_asyncapi_3(doc):
    assert doc["asyncapi"] == "3.0.0"
    assert {"title", "version"} <= doc["info"].keys()
    assert doc["channels"] and doc["operations"] and doc["components"]["messages"]
    allowed = {
        "asyncapi",
        "id",
        "info",
        "servers",
        "defaultContentType",
        "channels",
        "operations",
        "components",
    }
    assert doc.keys() <= allowed
    for server in doc["servers"].values():
        assert {"host", "protocol"} <= server.keys()


def test_every_reference_resolves(doc):
    every = refs(doc)
    assert every
    for ref in every:
        resolve(doc, ref)


def test_every_operation_names_its_channel_and_only_that_channels_messages(doc):
    for op_id, op in doc["operations"].items():
        assert op["action"] in ("send", "receive"), op_id
        channel_ref = op["channel"]["$ref"]
        channel = resolve(doc, channel_ref)
        assert op["messages"], op_id
        for message in op["messages"]:
            # AsyncAPI 3: an operation's messages are references into its own channel's messages.
            assert message["$ref"].startswith(channel_ref + "/messages/"), (op_id, message)
            assert message["$ref"].rsplit("/", 1)[1] in channel["messages"]


def test_every_message_carries_its_avro_schema_and_headers(doc):
    messages = doc["components"]["messages"]
    assert set(EVENT_TYPES) | {"DeadLetter"} == set(messages)
    for name, event_type in EVENT_TYPES.items():
        message = messages[name]
        assert message["payload"]["schemaFormat"] == "application/vnd.apache.avro;version=1.9.0"
        schema = message["payload"]["schema"]
        assert (schema["type"], f"{schema['namespace']}.{schema['name']}") == (
            "record",
            event_type.record_name(),
        )
        assert message["headers"]["allOf"][0] == {"$ref": "#/components/schemas/EventHeaders"}
        assert message["headers"]["allOf"][1]["properties"]["source"] == {"const": event_type.owner}


def test_the_channels_are_the_topic_catalogue(doc):
    assert {c["address"] for c in doc["channels"].values()} == {t.name for t in TOPICS}
    for name, event_type in EVENT_TYPES.items():
        assert name in doc["channels"][events_topic(event_type.owner)]["messages"]


def test_the_headers_are_the_envelopes_and_the_trace_context(doc):
    headers = doc["components"]["schemas"]["EventHeaders"]
    assert set(headers["properties"]) == {
        *Envelope.model_fields,
        "traceparent",
        "tracestate",
        "dlt_replay_group",
    }
    assert set(headers["required"]) == set(Envelope.model_fields) - {"causation_id"}


def test_the_dead_letter_headers_are_every_one_the_runtime_writes(doc):
    written = {
        value
        for name, value in vars(dead_letters).items()
        if name.isupper() and isinstance(value, str) and value.startswith(dead_letters.PREFIX)
    } - {dead_letters.PREFIX, dead_letters.REPLAY_GROUP}
    assert set(doc["components"]["schemas"]["DeadLetterHeaders"]["properties"]) == written


# --- What it says against the code -------------------------------------------------------------------


def operations(doc: dict[str, Any], who: str, action: str) -> dict[str, list[str]]:
    """The topics `who` sends to or receives from, each with the messages named."""
    found: dict[str, list[str]] = {}
    for op in doc["operations"].values():
        if op["tags"] == [{"name": who}] and op["action"] == action:
            topic = resolve(doc, op["channel"]["$ref"])["address"]
            found[topic] = [m["$ref"].rsplit("/", 1)[1] for m in op["messages"]]
    return found


@pytest.mark.parametrize("process", PROCESSES)
def test_a_process_receives_what_its_handler_table_names(doc, process):
    handlers = importlib.import_module(f"services.{process}.handlers").HANDLERS
    received = operations(doc, process, "receive")
    assert set(received) == {events_topic(owner) for owner in HEARS[process]}
    assert sorted(n for names in received.values() for n in names) == sorted(e.type_name() for e in handlers)


@pytest.mark.parametrize("process", PROCESSES)
def test_a_process_sends_what_it_publishes_and_its_dead_letters(doc, process):
    published = importlib.import_module(f"services.{process}.handlers").PUBLISHES
    sent = operations(doc, process, "send")
    assert sent.pop(dead_letter_topic(process)) == ["DeadLetter"]
    assert sent == ({events_topic(process): [e.type_name() for e in published]} if published else {})


def test_the_storefront_sends_order_placed(doc):
    assert operations(doc, "storefront", "send") == {"storefront.events": ["OrderPlaced"]}
    assert operations(doc, "storefront", "receive") == {}


def test_every_published_event_is_emitted_by_a_handler_or_a_timer(the_flow):
    for process in PROCESSES:
        emitted = {e for r in the_flow.reactions if r.process == process for e in r.emits}
        emitted |= {e for c in the_flow.clocks if c.process == process for e in c.emits}
        assert emitted == set(the_flow.publishes[process]), process


def test_the_deadline_is_a_timer_that_cancels_orders(the_flow, files):
    (clock,) = the_flow.clocks
    assert (clock.process, clock.function, clock.emits) == (
        "order",
        "cancel_overdue_orders",
        (OrderCancelled,),
    )
    assert "t_order_cancel_overdue_orders -.-> e_OrderCancelled" in files[flow.MERMAID_FILE]


@pytest.mark.parametrize(
    "edge",
    [
        "storefront --> e_OrderPlaced",
        "e_OrderPlaced --> h_payment_charge_for_order",
        "h_payment_charge_for_order --> e_PaymentCompleted",
        "e_ShipmentCreated --> h_inventory_hand_over_to_shipping",
        "h_order_advance_order --> e_OrderCompleted",
    ],
)
def test_the_saga_going_forward_is_solid(files, edge):
    assert f"  {edge}\n" in files[flow.MERMAID_FILE]


@pytest.mark.parametrize(
    "edge",
    [
        "h_payment_charge_for_order -.-> e_PaymentFailed",
        "e_OrderCancelled -.-> h_payment_refund_cancelled_order",
        "e_OrderCancelled -.-> h_inventory_release_for_cancelled_order",
        "e_OrderCancelled -.-> h_shipping_cancel_shipment",
        "e_StockReservationFailed -.-> h_payment_refund_payment",
        "e_ShipmentFailed -.-> h_payment_refund_payment",
        "e_ShipmentFailed -.-> h_inventory_release_reservation",
        "h_payment_refund_payment -.-> e_PaymentRefunded",
        "h_order_advance_order -.-> e_OrderCancelled",
    ],
)
def test_failures_and_compensations_are_dashed(files, edge):
    assert f"  {edge}\n" in files[flow.MERMAID_FILE]


def test_the_diagram_shows_the_saga_only(files):
    diagram = files[flow.MERMAID_FILE]
    assert diagram.startswith("flowchart LR\n")
    assert "timeline" not in diagram
    for service in SERVICES:
        assert f'  subgraph s_{service}["{service}"]\n' in diagram


# --- Return annotations ------------------------------------------------------------------------------


def charges(event: OrderPlaced, uow: object, envelope: Envelope) -> list[PaymentCompleted | PaymentFailed]:
    return []


def anything(event: OrderPlaced, uow: object, envelope: Envelope) -> list[Event]:
    return []


def unannotated(event, uow, envelope):
    return []


def nothing(event: OrderPlaced, uow: object, envelope: Envelope) -> None:
    return None


def a_timer(uow: object, limit: int) -> list[Decided[OrderCancelled]]:
    return []


def test_a_handler_says_what_it_can_emit_by_its_return_annotation():
    assert flow.emitted(charges, "charges") == (PaymentCompleted, PaymentFailed)
    assert flow.emitted(nothing, "nothing") == ()
    assert flow.emitted(a_timer, "a_timer") == (OrderCancelled,)


@pytest.mark.parametrize("handler", [anything, unannotated])
def test_a_handler_that_may_emit_any_event_is_refused(handler):
    with pytest.raises(flow.FlowError, match=handler.__name__):
        flow.emitted(handler, handler.__name__)


def test_a_handler_emitting_what_its_service_does_not_publish_is_refused(monkeypatch):
    payment = importlib.import_module("services.payment.handlers")
    monkeypatch.setattr(payment, "PUBLISHES", [PaymentCompleted, PaymentRefunded])
    with pytest.raises(flow.FlowError, match="charge_for_order can emit PaymentFailed"):
        flow.read_flow()


# --- The command -------------------------------------------------------------------------------------


def shopctl_flow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.shopctl", "flow", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_command_writes_the_files_and_check_names_what_drifted(tmp_path, files):
    out = tmp_path / "flow"
    missing = shopctl_flow("--check", "--out", str(out))
    assert missing.returncode == flow.DRIFTED
    assert "asyncapi.yaml" in missing.stderr and "choreography.mmd" in missing.stderr

    written = shopctl_flow("--out", str(out))
    assert written.returncode == 0, written.stderr
    assert {p.name: p.read_text() for p in out.iterdir()} == files
    assert "README" not in written.stdout  # another directory: README.md is left alone

    assert shopctl_flow("--check", "--out", str(out)).returncode == 0
    (out / flow.MERMAID_FILE).write_text(files[flow.MERMAID_FILE].replace("-.->", "-->"))
    drifted = shopctl_flow("--check", "--out", str(out))
    assert drifted.returncode == flow.DRIFTED
    assert "choreography.mmd" in drifted.stderr and "asyncapi.yaml" not in drifted.stderr
