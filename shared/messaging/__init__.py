"""The one runtime every service stands on: codec, outbox, consumer, retries, dead letters, tracing."""
