"""The JSON body parser of every API blueprint that takes a body through
flask-smorest: ``federator.inputs.parse_json_body`` (absurd numbers and nesting
are invalid JSON, a 422, never a 500). The lookups API has its own, which also
audits refusals (``federator.api.lookups``)."""

from __future__ import annotations

from typing import Any, NoReturn

from flask_smorest import Blueprint, abort
from marshmallow import missing
from webargs.flaskparser import FlaskParser, is_json_request

from federator.inputs import parse_json_body


class BodyParser(FlaskParser):
    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req):
            return missing
        return parse_json_body(req.get_data(cache=True))

    def _handle_invalid_json_error(self, error: Any, req: Any, *args: Any,
                                   **kwargs: Any) -> NoReturn:
        abort(422, errors={"json": ["The body is not valid JSON."]})


class InputBlueprint(Blueprint):
    ARGUMENTS_PARSER = BodyParser()
