"""The audit API's query and body schemas (marshmallow, documented by flask-smorest)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from federator.audit.export import FORMATS
from federator.audit.flags import FLAGS
from federator.inputs import InputSchema, Text, text_problem
from federator.lookup.free_text import child_in_text, identity_of
from federator.lookup.schemas import ChildSchema

MOMENT = "Give a date like 2026-11-20 or a time like 2026-11-20T09:30:00Z."
#: The calendar's edges less a day, so a whole day's end (the next midnight) and a
#: time moved to UTC stay inside it: 0001-01-01 and 9999-12-31 are refused, not a 500.
FIRST_DAY = date(1, 1, 2)
LAST_DAY = date(9999, 12, 30)
OUT_OF_RANGE = (f"Give a date from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}.")


class Moment(fields.Field):
    """A date (``2026-11-20``, the whole day) or a date and time (ISO 8601)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any
                     ) -> date | datetime:
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(MOMENT)
        problem = text_problem(value, max_length=40)
        if problem:
            raise ValidationError(problem)
        text = value.strip()
        try:
            moment: date | datetime = (date.fromisoformat(text) if len(text) == 10
                                       else datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError as e:
            raise ValidationError(MOMENT) from e
        if isinstance(moment, date) and not isinstance(moment, datetime):
            if not FIRST_DAY <= moment <= LAST_DAY:
                raise ValidationError(OUT_OF_RANGE)
            return moment
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        try:  # as the query compares it: in UTC
            in_utc = moment.astimezone(UTC)
        except OverflowError as e:
            raise ValidationError(OUT_OF_RANGE) from e
        if not FIRST_DAY <= in_utc.date() <= LAST_DAY:
            raise ValidationError(OUT_OF_RANGE)
        return moment


#: Above any record number, and inside a 64-bit database integer (no overflow, a 422).
MAX_SEQ = 2**62


class Strict(InputSchema):
    """Every audit input: unknown fields refused, text checked (``federator.inputs``)."""


class RangeQuery(Strict):
    from_ = Moment(data_key="from", load_default=None)
    to = Moment(load_default=None)

    @validates_schema
    def ordered(self, data: dict[str, Any], **_: Any) -> None:
        start, end = data.get("from_"), data.get("to")
        if start is not None and end is not None and _day(start) > _day(end):
            raise ValidationError({"to": ["Must not be before 'from'."]})


def _day(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


class RecordQuery(RangeQuery):
    actor = Text(max_length=200, load_default=None)
    organisation = Text(max_length=200, load_default=None)
    authority = Text(max_length=64, load_default=None)
    basis = Text(max_length=20, load_default=None, validate=validate.OneOf(
        ["consent", "safeguarding", "statutory"]))
    event = Text(max_length=100, load_default=None, validate=validate.Regexp(
        r"^[a-z_]+(\.[a-z_]+)?(\.\*|\*)?\Z", error="An event name, like lookup.requested "
        "or lookup.*."))
    flagged = fields.Boolean(load_default=None)
    flag = Text(max_length=100, load_default=None, validate=validate.OneOf(FLAGS))
    cursor = Text(max_length=100, load_default=None, validate=validate.Regexp(
        r"^[0-9]{1,18}\Z", error="Use the next_cursor of the previous page."))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    sort = Text(max_length=10, load_default="-seq", validate=validate.OneOf(["seq", "-seq"]))


class AuthorityQuery(RangeQuery):
    cursor = Text(max_length=100, load_default=None, validate=validate.Regexp(
        r"^[0-9]{1,18}\Z", error="Use the next_cursor of the previous page."))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class VerifyQuery(Strict):
    from_ = fields.Integer(data_key="from", load_default=1,
                           validate=validate.Range(min=1, max=MAX_SEQ))
    to = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_SEQ))


class ExportQuery(RangeQuery):
    format = Text(max_length=10, load_default="jsonl", validate=validate.OneOf(FORMATS))


class CheckChildBody(Strict):
    child = fields.Nested(ChildSchema, required=True)
    reason = Text(max_length=500, multiline=True, load_default=None, free_text=True)

    @validates_schema
    def reason_holds_no_child(self, data: dict[str, Any], **_: Any) -> None:
        problem = child_in_text(data.get("reason") or "", identity_of(data.get("child")))
        if problem:
            raise ValidationError({"reason": [problem]})


class InclusionQuery(Strict):
    seq = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_SEQ))
    tree_size = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_SEQ))


class ConsistencyQuery(Strict):
    first = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_SEQ))
    second = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_SEQ))


class PageSchema(Schema):
    records = fields.List(fields.Dict())
    next_cursor = fields.String(allow_none=True)


class VerdictSchema(Schema):
    ok = fields.Boolean()
    count = fields.Integer()
    seq = fields.Integer()
    reason = fields.String()
    pruned = fields.List(fields.Dict(), metadata={
        "description": "The pruned range walked (first, last) and the audit.pruned "
                       "records that pruned it (first, last, on, by, seq): bodies gone, "
                       "hashes and leaves kept"})


class CheckChildAnswer(Schema):
    searched = fields.List(fields.String())
    records = fields.List(fields.Dict())
