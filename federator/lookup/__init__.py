"""The lookup: validation, consent policy, routing, fan-out, merge."""
