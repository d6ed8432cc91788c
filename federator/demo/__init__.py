"""Demo pieces: a synthetic world of authorities and children, the files the
adapter kit and the broker read, and a development identity provider.

Nothing here is used outside ``federator demo`` and the tests.
"""
