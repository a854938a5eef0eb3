"""Benchmarks run against real services (see bench/README.md)."""
