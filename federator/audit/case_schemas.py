"""The queries of the auditor's casework pages (marshmallow, strict as the
audit API's are: ``federator.audit.schemas``)."""

from __future__ import annotations

from marshmallow import fields, validate

from federator.audit.casework import KIND_WORDS
from federator.audit.flags import FLAGS
from federator.audit.reviews import STATES
from federator.audit.schemas import RangeQuery
from federator.inputs import Text

CURSOR = validate.Regexp(r"^[0-9]{1,18}\Z", error="Use the link to the next page.")


class LookupQuery(RangeQuery):
    actor = Text(max_length=200, load_default=None)
    organisation = Text(max_length=200, load_default=None)
    basis = Text(max_length=20, load_default=None, validate=validate.OneOf(
        ["consent", "safeguarding", "statutory"], error="Choose a basis from the list."))
    kind = Text(max_length=20, load_default=None, validate=validate.OneOf(
        list(KIND_WORDS), error="Choose a kind of lookup from the list."))
    flag = Text(max_length=100, load_default=None, validate=validate.OneOf(
        FLAGS, error="Choose a flag from the list."))
    flagged = fields.Boolean(load_default=None)
    cursor = Text(max_length=20, load_default=None, validate=CURSOR)


class QueueQuery(RangeQuery):
    state = Text(max_length=30, load_default="open", validate=validate.OneOf(
        [*STATES, "all"], error="Choose a state from the list."))
    organisation = Text(max_length=200, load_default=None)
    flag = Text(max_length=100, load_default=None, validate=validate.OneOf(
        FLAGS, error="Choose a flag from the list."))
    cursor = Text(max_length=20, load_default=None, validate=CURSOR)


class PeriodQuery(RangeQuery):
    """The overview's and a practitioner's period (at most ``MAX_DAYS``)."""

    actor = Text(max_length=200, load_default=None)


#: the longest period the overview draws
MAX_DAYS = 366
