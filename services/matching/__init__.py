"""Matching: eligibility rules and a learned ranker that order products for each firm."""
