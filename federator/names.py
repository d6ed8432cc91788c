"""Names used across the broker, written once: each authority's outcome for a
lookup, and the audit trail's event names. Nothing here imports anything above it."""

from __future__ import annotations

from adapters.protocol import STATUSES

# -- an authority's outcome for one lookup -------------------------------------------
#: what the authority said (the wire statuses of ``federator-lookup/1``)
MATCH = "match"
NO_MATCH = "no_match"
DECLINED = "declined"
#: what the broker reports when the authority said nothing usable
TIMEOUT = "timeout"
ERROR = "error"
UNAVAILABLE = "unavailable"

OUTCOMES = (MATCH, NO_MATCH, DECLINED, TIMEOUT, ERROR, UNAVAILABLE)
#: the authority searched and answered: a lookup is complete when every one did
ANSWERED = frozenset({MATCH, NO_MATCH})
#: the authority spoke (searched, or declined to)
SPOKE = frozenset({MATCH, NO_MATCH, DECLINED})
#: no answer: worth asking again (a retry asks only these)
NOT_ANSWERED = frozenset({TIMEOUT, ERROR, UNAVAILABLE})
#: what counts against an authority's circuit breaker
FAILURES = frozenset({TIMEOUT, ERROR})

assert frozenset(STATUSES) == SPOKE, "the wire statuses and the broker's outcomes disagree"

# -- audit events ---------------------------------------------------------------------
LOOKUP_REQUESTED = "lookup.requested"
LOOKUP_COMPLETED = "lookup.completed"
LOOKUP_REFUSED = "lookup.refused"
#: a lookup cut off by a crash (requested, never completed), closed afterwards
LOOKUP_INTERRUPTED = "lookup.interrupted"
LOOKUP_RATE_LIMITED = "lookup.rate_limited"
LOOKUP_EVENTS = (LOOKUP_REQUESTED, LOOKUP_COMPLETED, LOOKUP_REFUSED, LOOKUP_INTERRUPTED)

AUTH_SIGNED_IN = "auth.signed_in"
AUTH_SIGNED_OUT = "auth.signed_out"
AUTH_REFUSED = "auth.refused"

AUDIT_RECORDS_LISTED = "audit.records_listed"
AUDIT_RECORD_VIEWED = "audit.record_viewed"
AUDIT_EXPORTED = "audit.exported"
AUDIT_VERIFIED = "audit.verified"
AUDIT_CHILD_CHECKED = "audit.child_checked"
AUDIT_CHECKPOINT_READ = "audit.checkpoint_read"
AUDIT_PROOF_READ = "audit.proof_read"
AUDIT_AUTHORITY_VIEWED = "audit.authority_viewed"
AUDIT_SUBJECT_ACCESS = "audit.subject_access"
#: retention: bodies older than the retention period removed (federator.audit.retention)
AUDIT_PRUNED = "audit.pruned"
#: an auditor's redaction of one sealed free text field (federator.audit.redaction)
AUDIT_REDACTED = "audit.redacted"
#: a queued entry that could not become a record, in its place (federator.audit.queue_checks)
AUDIT_ENTRY_REJECTED = "audit.entry_rejected"
#: the auditor's casework (``federator.audit.reviews``): what was read...
AUDIT_LOOKUPS_LISTED = "audit.lookups_listed"
AUDIT_QUEUE_VIEWED = "audit.queue_viewed"
AUDIT_CASE_VIEWED = "audit.case_viewed"
AUDIT_PRACTITIONER_VIEWED = "audit.practitioner_viewed"
AUDIT_OVERVIEW_VIEWED = "audit.overview_viewed"
#: ...and each change to a flagged lookup's review, by the state it is put in
#: (a note alone is ``audit.review.noted``); the review is read back from these
AUDIT_REVIEWED = {"open": "audit.review.reopened", "no_concern": "audit.review.no_concern",
                  "raised_with_manager": "audit.review.raised_with_manager",
                  "referred": "audit.review.referred"}
AUDIT_REVIEW_NOTED = "audit.review.noted"
AUDIT_REVIEW_EVENTS = (*AUDIT_REVIEWED.values(), AUDIT_REVIEW_NOTED)

REGISTRY_REGISTERED = "registry.registered"
REGISTRY_UPDATED = "registry.updated"
REGISTRY_CHECKED = "registry.checked"
REGISTRY_SEEDED = "registry.seeded"
#: a broker admin's review of an endpoint, by the action taken
REGISTRY_REVIEWED = {"approve": "registry.approved", "reject": "registry.rejected",
                     "suspend": "registry.suspended", "resume": "registry.resumed"}
