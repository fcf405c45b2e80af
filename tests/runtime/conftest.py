from tests.runtime.support import _needs_the_stack, codec, database, storefront, topics

__all__ = ["_needs_the_stack", "codec", "database", "storefront", "topics"]
