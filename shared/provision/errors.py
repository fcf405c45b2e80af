"""What provisioning refuses to fix by itself."""


class ProvisioningError(Exception):
    """What exists contradicts the catalogue in a way that must not be fixed automatically."""
