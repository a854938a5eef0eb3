"""Schemas that cross service boundaries: firm features, products, rank requests and answers."""
