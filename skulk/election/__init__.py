"""Master election: a pure core (core.py) and its trio shell (service.py)."""
