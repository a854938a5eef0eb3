"""Deterministic synthetic Dongguan world: institutions, products, firms and loan histories."""
