"""`python -m services.order`: the order service's composition root."""

from services.order.handlers import HANDLERS, PUBLISHES
from services.order.storage import OrderUnitOfWork
from shared.messaging.runtime import serve

if __name__ == "__main__":
    serve("order", HANDLERS, PUBLISHES, OrderUnitOfWork)
