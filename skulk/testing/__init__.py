"""Helpers for tests and local experiments: loopback clusters of real node processes."""
