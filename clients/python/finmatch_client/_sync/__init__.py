# Generated from finmatch_client/_async/__init__.py by tools/unasync.py: edit that, not this.
"""The synchronous client: the source that tools/unasync.py turns into finmatch_client/_sync."""
