"""What the tests share: real servers on loopback, builders of test data, browser
tools. Test modules import from here (``from support.fhir_server import ...``;
``tests/`` is on ``sys.path`` through its ``conftest.py``), never from each other:
``tests/unit/test_test_imports.py`` fails on an import of a ``test_*`` module, a
conftest, or a helper left beside the tests.

- ``services``: the real PostgreSQL (a fresh schema) and Redis the tests use.
- ``fhir_server``: a FHIR R4 server with an OAuth2 token endpoint (SMART too).
- ``fault_server``: an authority that misbehaves on demand, and lookups asking it.
- ``own_redis``: a redis-server of a test's own, to stop and start under a broker.
- ``named_children``: children whose names test the path to a kit match.
- ``log_capture``: the broker's JSON log lines, and what must never be in them.
- ``web_client``: the app on a fresh database, signed-in test clients, CSRF tokens,
  and what the broker holds server-side for a session cookie.
- ``oidc_provider``: npm's ``oidc-provider`` on loopback, a broker signing in to it,
  browser sign-in through its forms, and a case system's RFC 9068 access tokens.
- ``browser``: Chromium pages with axe-core, and screenshots.
"""
