"""Soak benchmark: mixed traffic through the gateway at a constant rate (open loop) for minutes,
with each service's memory, the latency per minute and a count-back of every acknowledged write.

Run ``python -m bench.soak`` (``make bench-soak``); bench/README.md describes what it prints.
"""
