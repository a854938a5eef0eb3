"""Benchmark GET /v1/firms/{id}/matches through the gateway: uncached, cached, and the floor.

Run from the repository root as a module (``python -m bench.api``). The same package also serves
two roles in child processes: the Python load generator (``--loadgen``, ``loadgen``) and the
services' apps with one extra route that answers precomputed bytes (``apps``, the floors).

The load comes from wrk where it is installed (``apt-get install wrk``; bench/wrk_paths.lua
walks the URLs): a C client costs the machine ~0.1 ms of CPU per request, so the figures are
the servers'. ``--client python`` uses the httpx client instead (~1.3 ms per request, which
saturates a core at ~750 requests/s and hides the gateway's own cost on the cached path).
"""
