"""`python -m services.payment`: the payment service's composition root."""

from services.payment.handlers import HANDLERS, NEEDS, PUBLISHES
from services.payment.storage import PaymentUnitOfWork
from shared.messaging.runtime import serve

if __name__ == "__main__":
    serve("payment", HANDLERS, PUBLISHES, PaymentUnitOfWork, NEEDS)
