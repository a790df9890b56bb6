"""Stores that persist statebits: MemoryStore and the durable SQLiteStore.

Every store implements :class:`Store`. A statebit returned by a store, or
saved into one, is attached to it: each later append is written in the same
critical section as the in-memory append, and a failed write undoes both.
"""

from statebits.stores.base import KeyNotFoundError, Store, StoreConflictError
from statebits.stores.memory import MemoryStore
from statebits.stores.sqlite import SQLiteStore

__all__ = ["Store", "MemoryStore", "SQLiteStore", "StoreConflictError", "KeyNotFoundError"]
