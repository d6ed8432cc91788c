"""Schemathesis against the broker's own OpenAPI document, over real HTTP on
loopback, with bearer tokens from the development identity provider for the
role each operation needs: every operation, no 500, and every response
(status, content type, body, headers) matches the document.

Bounded for CI by ``FEDERATOR_SCHEMATHESIS_EXAMPLES`` (default 25 per operation).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from support.budget import UNLIMITED

from federator.config import Settings
from federator.demo.federation import Federation, start_federation

pytestmark = pytest.mark.integration
EXAMPLES = int(os.environ.get("FEDERATOR_SCHEMATHESIS_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    fed = start_federation(Path(tmp_path_factory.mktemp("schemathesis")), base=Settings(
        **UNLIMITED, deadline_default_ms=1500,
        deadline_max_ms=3000))
    yield fed
    fed.stop()


@pytest.fixture(scope="module")
def tokens(federation: Federation) -> dict[str, str]:
    authority = federation.world.authorities[0].id
    return {"practitioner": federation.token("practitioner"),
            "auditor": federation.token("auditor"),
            "broker-admin": federation.token("broker-admin"),
            "authority-admin": federation.token(f"authority-admin:{authority}")}


@pytest.fixture(scope="module")
def api_schema(federation: Federation) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{federation.broker.url}/api/openapi.json")


def role_for(method: str, path: str) -> str:
    """The role the access table gives each group of operations."""
    if path.startswith("/api/v1/lookups"):
        return "practitioner"
    if path.startswith("/api/v1/audit/authority"):
        return "authority-admin"
    if path.startswith("/api/v1/audit"):
        return "auditor"
    if path.startswith("/api/v1/registry"):
        return "authority-admin" if method == "POST" and path.endswith("/endpoints") \
            else "broker-admin"
    return "practitioner"


def test_every_operation_matches_the_document(federation: Federation, tokens: dict[str, str],
                                              api_schema: schemathesis.BaseSchema) -> None:
    failures: list[str] = []
    labels: list[str] = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        labels.append(operation.label)
        headers = {"Authorization": "Bearer "
                   + tokens[role_for(operation.method.upper(), operation.path)]}
        try:
            _fuzz(operation, headers)
        except (Exception, BaseExceptionGroup) as e:  # every operation runs; all reported
            failures.append(f"{operation.label}: {_summary(e)}")
    assert len(labels) >= 20, labels  # every operation of the document was reached
    assert failures == [], "\n\n".join(failures)


def _fuzz(operation: schemathesis.APIOperation, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        # positive_data_acceptance is left out: the schema cannot say what the rules
        # beyond it refuse with a 422 naming the field (an NHS number's check digit, a
        # consent date in the future, a range whose end is before its start).
        case.call_and_validate(headers=headers,
                               excluded_checks=[checks.positive_data_acceptance])

    run()


def _summary(error: BaseException) -> str:
    """Each distinct failure's title and first lines (the reproducing curl is in them)."""
    parts = [str(error).splitlines()[0] if str(error) else type(error).__name__]
    for inner in getattr(error, "exceptions", ()):
        lines = [line for line in str(inner).splitlines() if line.strip()][:6]
        parts.append(f"  - {type(inner).__name__}: " + " | ".join(lines))
    return "\n".join(parts)
