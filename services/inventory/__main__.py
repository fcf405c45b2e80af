"""`python -m services.inventory`: the inventory service's composition root."""

from services.inventory.handlers import HANDLERS, NEEDS, PUBLISHES
from services.inventory.storage import InventoryUnitOfWork
from shared.messaging.runtime import serve

if __name__ == "__main__":
    serve("inventory", HANDLERS, PUBLISHES, InventoryUnitOfWork, NEEDS)
