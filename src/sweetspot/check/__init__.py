"""Answers beyond the sweep, and their checks: another stack (predict, validate), before a sweep
(forecast), fresh seeds against the verdicts (heldout)."""
