"""shopctl: the storefront's producer and the operator's tools (not a service: a command line)."""
