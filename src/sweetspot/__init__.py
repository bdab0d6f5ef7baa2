"""sweetspot: which batch size trains a network to a target accuracy fastest here, and why."""

__version__ = "0.1.0"
