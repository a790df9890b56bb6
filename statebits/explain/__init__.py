"""Explanations of histories: text, causal graphs and plain-language summaries."""

from statebits.explain.graph import CausalGraph

__all__ = ["CausalGraph"]
