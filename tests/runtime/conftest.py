from tests.runtime.support import _needs_the_stack, codec, consumer_for, database, storefront, topics

__all__ = ["_needs_the_stack", "codec", "consumer_for", "database", "storefront", "topics"]
