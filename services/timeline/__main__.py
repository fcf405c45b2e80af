"""`python -m services.timeline`: the timeline read model's composition root."""

from services.timeline.handlers import HANDLERS, PUBLISHES
from services.timeline.storage import TimelineUnitOfWork
from shared.messaging.kafka_clients import UNHURRIED
from shared.messaging.runtime import serve

if __name__ == "__main__":
    # Off every saga's path: its batches wait for company, and the saga's consumers get the CPU.
    serve("timeline", HANDLERS, PUBLISHES, TimelineUnitOfWork, fetching=UNHURRIED)
