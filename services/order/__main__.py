"""`python -m services.order`: the order service's composition root."""

from datetime import timedelta

from services.order.handlers import HANDLERS, NEEDS, PUBLISHES, timers
from services.order.storage import OrderUnitOfWork
from shared.messaging.runtime import serve
from shared.settings import get_settings

if __name__ == "__main__":
    timeout = timedelta(seconds=get_settings().order_saga_timeout_seconds)
    serve("order", HANDLERS, PUBLISHES, OrderUnitOfWork, NEEDS, timers=timers(timeout))
