"""`python -m services.shipping`: the shipping service's composition root."""

from services.shipping.handlers import HANDLERS, NEEDS, PUBLISHES
from services.shipping.storage import ShippingUnitOfWork
from shared.messaging.runtime import serve

if __name__ == "__main__":
    serve("shipping", HANDLERS, PUBLISHES, ShippingUnitOfWork, NEEDS)
