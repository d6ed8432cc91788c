"""Our templates are strict: a view that forgets a field fails, not renders blank."""

from __future__ import annotations

import pytest
from jinja2 import Environment, UndefinedError

from federator.web.blueprint import PageUndefined

ENV = Environment(undefined=PageUndefined, autoescape=True)


@pytest.mark.parametrize("template", [
    "{{ missing_name }}",
    "{{ row.lookup_id }}",
    "{% if row.lookup_id %}x{% endif %}",
    "{% for x in row.items_missing %}{{ x }}{% endfor %}",
])
def test_a_missing_name_or_key_in_our_templates_fails(template: str) -> None:
    with pytest.raises(UndefinedError):
        ENV.from_string(template).render(row={"at": "2026-11-26"})


def test_present_values_render() -> None:
    assert ENV.from_string("{{ row.at }}").render(row={"at": "2026-11-26"}) == "2026-11-26"
