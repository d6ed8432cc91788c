"""``/api/v1/audit``: the trail for auditors (role ``auditor`` only).

Every call here is itself written to the trail (``audit.*``); when that write
fails the call answers 503 and shows nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from flask import Response, current_app, g, stream_with_context
from flask_smorest import abort

from federator.api.bodies import InputBlueprint
from federator.audit import queries, tree_store
from federator.audit.export import lines
from federator.audit.merkle import ProofError
from federator.audit.schemas import (
    MAX_SEQ,
    CheckChildAnswer,
    CheckChildBody,
    ConsistencyQuery,
    ExportQuery,
    InclusionQuery,
    PageSchema,
    RecordQuery,
    VerdictSchema,
    VerifyQuery,
)
from federator.audit.trail import AuditTrail, AuditUnavailable
from federator.auth.access import require_roles
from federator.names import (
    AUDIT_CHECKPOINT_READ,
    AUDIT_CHILD_CHECKED,
    AUDIT_EXPORTED,
    AUDIT_PROOF_READ,
    AUDIT_RECORD_VIEWED,
    AUDIT_RECORDS_LISTED,
    AUDIT_VERIFIED,
)

log = logging.getLogger(__name__)

blp = require_roles(
    InputBlueprint("audit", __name__, url_prefix="/api/v1/audit",
              description="The audit trail: review, check a child, verify, export"),
    "auditor",
)


def _trail() -> AuditTrail:
    trail: AuditTrail = current_app.extensions["federator"].trail
    return trail


def audited(event: str, **fields: Any) -> None:
    """Record what the auditor did; nothing is shown unless that is recorded."""
    try:
        _trail().append(event, **g.principal.actor(g.role), **fields)
    except AuditUnavailable:
        abort(503, message="The audit trail cannot be written, so nothing is shown.")


def _filter(args: dict[str, Any]) -> queries.RecordFilter:
    return queries.RecordFilter(
        start=args.get("from_"), end=args.get("to"), actor=args.get("actor"),
        organisation=args.get("organisation"), authority=args.get("authority"),
        basis=args.get("basis"), event=args.get("event"), flagged=args.get("flagged"),
        flag=args.get("flag"))


def _described(args: dict[str, Any]) -> dict[str, Any]:
    return {("from" if k == "from_" else k): (v.isoformat() if hasattr(v, "isoformat") else v)
            for k, v in args.items() if v is not None}


@blp.route("/records")
@blp.arguments(RecordQuery, location="query")
@blp.response(200, PageSchema)
def list_records(args: dict[str, Any]) -> Any:
    """Records, newest first (``sort=seq`` for oldest first), filtered; page with
    ``cursor`` set to the previous page's ``next_cursor``."""
    audited(AUDIT_RECORDS_LISTED, query=_described(args))
    page = queries.list_records(_trail().engine, _filter(args), cursor=args["cursor"],
                                limit=args["limit"], newest_first=args["sort"] == "-seq")
    return {"records": page.records, "next_cursor": page.next_cursor}


@blp.route("/records/<int:seq>")
@blp.response(200)
@blp.alt_response(404, description="No record with this number")
def get_record(seq: int) -> Any:
    """One record, with its hashes and flags."""
    if seq > MAX_SEQ:  # beyond a database integer: no such record
        abort(404, message=f"There is no record {seq}.")
    audited(AUDIT_RECORD_VIEWED, record=seq)
    record = queries.get_record(_trail().engine, seq)
    if record is None:
        abort(404, message=f"There is no record {seq}.")
    covering = _trail().covering(seq)
    return {"record": record, "checkpoint": covering.public() if covering else None}


@blp.route("/verify")
@blp.arguments(VerifyQuery, location="query")
@blp.response(200, VerdictSchema)
def verify(args: dict[str, Any]) -> Any:
    """``{"ok": true, "count": N}``, or the first bad ``seq`` and why."""
    verdict = _trail().verify(start=args["from_"], end=args["to"])
    audited(AUDIT_VERIFIED, range={"from": args["from_"], "to": args["to"]},
            result=verdict.as_dict())
    return verdict.as_dict()


@blp.route("/check-child", methods=["POST"])
@blp.arguments(CheckChildBody)
@blp.response(200, CheckChildAnswer)
def check_child(body: dict[str, Any]) -> Any:
    """Was this child looked up? The identity is pseudonymised as lookups are
    (NHS number, and name with date of birth) and the matching records listed."""
    key = current_app.extensions["federator"].settings.audit_key
    searched, pseudonyms = queries.child_pseudonyms(body["child"], key)
    audited(AUDIT_CHILD_CHECKED, child_pseudonym=pseudonyms[0], pseudonyms=pseudonyms,
            searched=searched, reason=body.get("reason"))
    return {"searched": searched,
            "records": queries.lookups_of_child(_trail().engine, pseudonyms)}


@blp.route("/export")
@blp.arguments(ExportQuery, location="query")
@blp.response(200, content_type="application/x-ndjson")
def export(args: dict[str, Any]) -> Any:
    """Records in a date range as JSON lines or CSV, oldest first. The signed
    checkpoint covering the last one is in the ``Audit-Checkpoint`` header
    (JWS compact) and at ``/api/v1/audit/checkpoints/<tree_size>``."""
    trail = _trail()
    audited(AUDIT_EXPORTED, query=_described(args))
    f = queries.RecordFilter(start=args.get("from_"), end=args.get("to"))
    checkpoint = trail.checkpoint() or trail.latest()
    if checkpoint is not None:
        f = queries.RecordFilter(start=f.start, end=f.end, seq_to=checkpoint.tree_size)
    mimetype = "text/csv" if args["format"] == "csv" else "application/x-ndjson"

    def body() -> Iterator[str]:
        yield from lines(queries.iter_records(trail.engine, f), args["format"])

    headers = {"Content-Disposition": f"attachment; filename=audit.{args['format']}",
               "Cache-Control": "no-store"}
    if checkpoint is not None:
        headers["Audit-Checkpoint"] = checkpoint.signed
    return Response(stream_with_context(body()), mimetype=mimetype, headers=headers)


@blp.route("/checkpoints/latest")
@blp.response(200)
def latest_checkpoint() -> Any:
    """A signed checkpoint of the trail as it stands now."""
    audited(AUDIT_CHECKPOINT_READ)
    checkpoint = _trail().checkpoint() or _trail().latest()
    if checkpoint is None:
        abort(404, message="The trail is empty.")
    return checkpoint.public()


@blp.route("/proofs/inclusion")
@blp.arguments(InclusionQuery, location="query")
@blp.response(200)
def prove_inclusion(args: dict[str, Any]) -> Any:
    """RFC 9162 inclusion proof of record ``seq`` in a signed checkpoint's tree
    (the smallest covering it, unless ``tree_size`` names one)."""
    trail = _trail()
    audited(AUDIT_PROOF_READ, record=args["seq"], tree_size=args["tree_size"])
    checkpoint = trail.covering(args["tree_size"] or args["seq"])
    if checkpoint is None or (args["tree_size"] and checkpoint.tree_size != args["tree_size"]):
        abort(404, message="No signed checkpoint of that size covers this record yet.")
    index = args["seq"] - 1
    try:  # O(log n) stored nodes (federator.audit.tree_store)
        found = tree_store.inclusion(trail.engine, index, checkpoint.tree_size)
    except ProofError as e:
        abort(409, message=f"The trail does not match its checkpoint: {e}")
    except tree_store.TreeUnavailable:
        abort(503, message="The proof cannot be made now: try again shortly.")
    if found is None:
        abort(409, message="The trail does not match its checkpoint: it holds fewer records.")
    leaf, proof = found
    problem = tree_store.inclusion_problem(index, checkpoint.tree_size, leaf, proof,
                                           checkpoint.root_hash)
    if problem is not None:  # given all the same: the auditor's check shows it
        log.error("audit tree: record %s does not lead to checkpoint %s's root (%s)",
                  args["seq"], checkpoint.tree_size, problem)
    return {"seq": args["seq"], "leaf_index": index, "leaf_hash": leaf.hex(),
            "proof": [p.hex() for p in proof], "checkpoint": checkpoint.public()}


@blp.route("/proofs/consistency")
@blp.arguments(ConsistencyQuery, location="query")
@blp.response(200)
def prove_consistency(args: dict[str, Any]) -> Any:
    """RFC 9162 consistency proof between two signed checkpoints' trees."""
    trail = _trail()
    audited(AUDIT_PROOF_READ, first=args["first"], second=args["second"])
    older = trail.covering(args["first"])
    newer = trail.covering(args["second"]) if args["second"] else trail.latest()
    if older is None or newer is None or older.tree_size != args["first"] \
            or (args["second"] and newer.tree_size != args["second"]):
        abort(404, message="Both sizes must be signed checkpoints.")
    if older.tree_size > newer.tree_size:
        abort(422, errors={"query": {"second": ["Must not be smaller than 'first'."]}})
    try:
        found = tree_store.consistency(trail.engine, older.tree_size, newer.tree_size)
    except tree_store.TreeUnavailable:
        abort(503, message="The proof cannot be made now: try again shortly.")
    if found is None:
        abort(409, message="The trail does not match its checkpoint: it holds fewer records.")
    problem = tree_store.consistency_problem(older.tree_size, older.root_hash, newer.tree_size,
                                             newer.root_hash, *found)
    if problem is not None:
        log.error("audit tree: checkpoints %s and %s do not agree with the tree (%s)",
                  older.tree_size, newer.tree_size, problem)
    return {"first": older.public(), "second": newer.public(),
            "proof": [p.hex() for p in found[0]]}
