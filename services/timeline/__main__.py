"""`python -m services.timeline`: the timeline read model's composition root."""

from services.timeline.handlers import HANDLERS, PUBLISHES
from services.timeline.storage import TimelineUnitOfWork
from shared.messaging.runtime import serve

if __name__ == "__main__":
    serve("timeline", HANDLERS, PUBLISHES, TimelineUnitOfWork)
