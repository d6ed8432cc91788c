from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from adapters.kit.sources import ChildRecord, Involvement


def _involvement(**overrides: Any) -> Involvement:
    values: dict[str, Any] = {
        "professional_name": "Sam Patel",
        "role": "Social worker",
        "service": "children's social care",
        "organisation": "Example City Council",
        "team": "West Assessment Team",
        "phone": "01632 960001",
        "email": "sam.patel@example.invalid",
        "registration_number": "SW123456",
        "sensitive": False,
        "from_": date(2025, 9, 1),
        "to": None,
    }
    values.update(overrides)
    return Involvement(**values)


def _record(**overrides: Any) -> ChildRecord:
    values: dict[str, Any] = {
        "child_ref": "C-1",
        "nhs_number": "9434765919",
        "given_name": "Amara",
        "family_name": "Okafor",
        "date_of_birth": date(2015, 3, 12),
        "postcode": "LS6 2AB",
        "shielded": False,
        "shield_notice": None,
        "involvements": [],
    }
    values.update(overrides)
    return ChildRecord(**values)


@pytest.fixture
def make_involvement() -> Callable[..., Involvement]:
    return _involvement


@pytest.fixture
def make_record() -> Callable[..., ChildRecord]:
    return _record
