"""Session metadata (names, tags, descriptions) kept in a TinyDB file.

Import :mod:`tokmon.metadata.store` lazily from hot paths; it imports tinydb only
inside the methods that write.
"""
