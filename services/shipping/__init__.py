"""Shipping: creates a shipment for every reserved order whose address it serves."""
