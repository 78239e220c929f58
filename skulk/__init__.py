"""Skulk: a peer-to-peer LLM inference cluster."""

__version__ = "0.1.0"
