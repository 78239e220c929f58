"""Ordered event delivery: per-origin sequencing into the master, indexed fan-out to nodes."""
