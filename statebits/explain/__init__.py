"""Explanations of histories: text, causal graphs and plain-language summaries."""

from statebits.explain.graph import CausalGraph
from statebits.explain.nl import NLExplainer

__all__ = ["CausalGraph", "NLExplainer"]
