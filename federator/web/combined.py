"""One answer across "ask again": the first lookup's answer with the retry's.

Federator stores no answer. The first answer is already in the practitioner's
browser, so its page carries it, signed by the broker (``itsdangerous``, keyed
with the secret key, bound to the person and the lookup it answered), in the
"ask again" form; the retry's page checks the signature, puts the two
together and forgets both. A blob that fails the check (changed, another
person's, another lookup's, older than ``MAX_AGE_S``) is ignored: the page then
shows the retry's answer alone and says so.

Pure functions: no Flask, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from itsdangerous import BadData, URLSafeTimedSerializer

from federator.names import ANSWERED

SALT = "federator.web.first-answer"
#: an "ask again" is pressed minutes after the answer, not the next day
MAX_AGE_S = 2 * 3600


def sign_answer(secret: str, answer: Mapping[str, Any], actor_id: str) -> str:
    return URLSafeTimedSerializer(secret, salt=SALT).dumps(
        {"actor": actor_id, "answer": dict(answer)})


def open_answer(secret: str, blob: str, *, actor_id: str, lookup_id: str,
                max_age_s: int = MAX_AGE_S) -> dict[str, Any] | None:
    """The signed answer, if it is intact, this person's and the answer of
    ``lookup_id`` (the lookup asked again); otherwise None."""
    if not blob:
        return None
    try:
        data = URLSafeTimedSerializer(secret, salt=SALT).loads(blob, max_age=max_age_s)
    except BadData:
        return None
    if not isinstance(data, dict) or data.get("actor") != actor_id:
        return None
    answer = data.get("answer")
    if not isinstance(answer, dict) or answer.get("lookup_id") != lookup_id:
        return None
    return answer


def combine(first: Mapping[str, Any], again: Mapping[str, Any]) -> dict[str, Any]:
    """The first answer with the retry's: each authority's latest outcome, the
    professionals of both (each marked with the lookup that found them), the
    notices of the latest answer from each authority. ``lookup_id`` stays the
    retry's (its receipt); ``lookups`` lists both, first first."""
    again_ids = {a["id"] for a in again.get("authorities") or []}
    first_id, again_id = first.get("lookup_id"), again.get("lookup_id")

    def marked(items: Any, lookup: Any) -> list[dict[str, Any]]:
        return [{**i, "lookup": i.get("lookup") or lookup} for i in items or []]

    authorities = [a for a in marked(first.get("authorities"), first_id)
                   if a["id"] not in again_ids] + marked(again.get("authorities"), again_id)
    notices = [n for n in first.get("notices") or []
               if n.get("authority") is not None and n.get("authority") not in again_ids]
    notices += [n for n in again.get("notices") or [] if n.get("authority") is not None]
    seen: set[str] = set()
    for n in list(first.get("notices") or []) + list(again.get("notices") or []):
        if n.get("authority") is None and n.get("text") not in seen:  # the broker's own
            seen.add(n.get("text"))
            notices.append(n)
    earlier = [x for x in first.get("lookups") or [first_id] if x != again_id]
    return {
        "lookup_id": again_id,
        "lookups": [*earlier, again_id],
        "complete": bool(authorities) and all(a.get("outcome") in ANSWERED
                                              for a in authorities),
        "authorities": authorities,
        # Only authorities that had not answered are asked again, so the two
        # lists come from different authorities: put side by side, not merged.
        "professionals": marked(first.get("professionals"), first_id)
        + marked(again.get("professionals"), again_id),
        "notices": notices,
    }
