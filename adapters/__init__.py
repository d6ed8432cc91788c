"""Everything that talks to authorities' systems.

The wire protocol (schemas, signing and verifying) lives here so that
``adapters.kit`` can run at an authority without the broker installed.
This package never imports ``federator``.
"""
