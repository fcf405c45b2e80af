"""Payment: charges customers for their orders and refunds them when the order cannot go on."""
