"""The asynchronous client: the source that tools/unasync.py turns into finmatch_client/_sync."""
