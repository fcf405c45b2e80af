"""`python -m services.order`: the order service's composition root."""

from services.order.handlers import HANDLERS, NEEDS, PUBLISHES
from services.order.storage import OrderUnitOfWork
from shared.messaging.runtime import serve

if __name__ == "__main__":
    serve("order", HANDLERS, PUBLISHES, OrderUnitOfWork, NEEDS)
