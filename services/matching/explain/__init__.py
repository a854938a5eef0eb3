"""Readable reasons behind a match, in Chinese or English: rules met and unmet, cost, model.

One entry point over three kinds of wording: rules (``rules``: each eligibility criterion as
its registry entry words it), cost (``cost``) and model factors (``model``); ``words`` prints
numbers and names for all three.
"""

from services.matching.explain.cost import cost_message, cost_reason
from services.matching.explain.model import MODEL_GROUPS, model_fact, model_message, model_reason
from services.matching.explain.rules import (
    MET_ORDER,
    met_key,
    met_message,
    restrictive_rules,
    rule_reasons,
    unmet_criteria,
    unmet_items,
)
from services.matching.explain.words import format_usd, format_yuan

__all__ = [
    "MET_ORDER",
    "MODEL_GROUPS",
    "cost_message",
    "cost_reason",
    "format_usd",
    "format_yuan",
    "met_key",
    "met_message",
    "model_fact",
    "model_message",
    "model_reason",
    "restrictive_rules",
    "rule_reasons",
    "unmet_criteria",
    "unmet_items",
]
