"""FHIR references and URLs as real servers write them: pure functions, no network.

A server may name a resource (FHIR R4 2.3.0 "Resource References") by

- a relative reference, ``Practitioner/p1``, possibly versioned,
  ``Practitioner/p1/_history/2``;
- an absolute URL on its own base (``https://fhir.trust.example/R4/Practitioner/p1``),
  which behind a proxy or under another host name is not the base the broker
  registered;
- a reference to a resource contained in the one that holds it, ``#p1``;
- an absolute URL on another server.

:func:`normalise` rewrites every reference in a resource to one *key* the rest
of the client looks up: ``Type/id`` for the server's own resources (version
dropped), ``Container/id#p1`` for contained ones (each contained resource is
returned under its key), and nothing for a reference to another server, which
is never fetched (that would be the broker fetching an address a server named:
SSRF) and is reported by type and host only.

:func:`locate` decides whether a URL the server gave (a ``next`` link, an
absolute reference) is on the registered base or on a base the server itself
declares (``CapabilityStatement.implementation.url``, a Bundle's ``self``
link), and gives the path to ask *on the registered base*: the broker only ever
connects where it was registered to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

#: ``Type/id`` with an optional ``/_history/vid`` (FHIR ids: 1-64 of A-Za-z0-9-.)
RELATIVE = re.compile(
    r"^(?P<type>[A-Z][A-Za-z]{1,63})/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/(?P<version>[A-Za-z0-9\-.]{1,64}))?$")
CONTAINED = re.compile(r"^#(?P<id>[A-Za-z0-9\-.]{1,64})$")
#: How many contained resources one resource may bring (bounded work).
MAX_CONTAINED = 50


@dataclass(frozen=True)
class Foreign:
    """A reference to another server: never fetched; named by type and host only."""

    kind: str
    host: str

    def named(self) -> str:
        return f"{self.kind} at {self.host}"


@dataclass
class Normalised:
    """One resource with its references rewritten to keys."""

    resource: dict[str, Any]
    contained: dict[str, dict[str, Any]] = field(default_factory=dict)
    foreign: list[Foreign] = field(default_factory=list)


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased (default ports dropped)."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        return ""
    if port is None or (scheme, port) in {("http", 80), ("https", 443)}:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _split_base(base: str) -> tuple[str, str]:
    return origin(base), urlsplit(base).path.rstrip("/")


def locate(url: str, registered: str, declared: Iterable[str] = ()
           ) -> tuple[str, str] | None:
    """Where to ask for ``url``: ``("base", path under the registered base)``,
    ``("origin", absolute path on the registered origin)``, or ``None`` (another
    server: not to be asked)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname \
            or parts.username is not None or parts.password is not None:
        return None
    where = origin(url)
    if not where:
        return None
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    reg_origin, reg_path = _split_base(registered)
    for base_origin, base_path in [(reg_origin, reg_path),
                                   *(_split_base(b) for b in declared if b)]:
        if where != base_origin:
            continue
        if parts.path == base_path or parts.path.startswith(base_path + "/"):
            return "base", tail[len(base_path):] or "/"
    if where == reg_origin:
        return "origin", tail or "/"
    return None


def declared_base(self_link: str, kind: str) -> str | None:
    """The base a search Bundle's ``self`` link declares: the URL before ``/{kind}``
    (``https://int.example/fhir/CareTeam?patient=…`` -> ``https://int.example/fhir``)."""
    parts = urlsplit(self_link)
    segments = parts.path.split("/")
    if kind not in segments[1:] or not parts.scheme or not parts.netloc:
        return None
    cut = len(segments) - 1 - segments[::-1].index(kind)
    return f"{parts.scheme}://{parts.netloc}" + "/".join(segments[:cut])


def reference_key(reference: str, registered: str, declared: Iterable[str] = ()
                  ) -> str | Foreign | None:
    """``Type/id`` for a reference to this server (relative, versioned, or absolute on
    its base), :class:`Foreign` for one to another server, ``None`` for what is no
    reference the broker can follow (``urn:uuid:…``, a search URL, garbage)."""
    text = reference.strip()
    if m := RELATIVE.match(text):
        return f"{m['type']}/{m['id']}"
    if not re.match(r"^https?://", text, re.IGNORECASE):
        return None
    found = locate(text, registered, declared)
    if found is None:
        segments = urlsplit(text).path.rstrip("/").split("/")
        if len(segments) >= 4 and segments[-2] == "_history":
            segments = segments[:-2]
        kind = segments[-2] if len(segments) >= 3 and RELATIVE.match(
            f"{segments[-2]}/x") else "resource"
        return Foreign(kind, (urlsplit(text).hostname or "?")[:253])
    where, path = found
    m = RELATIVE.match(path.lstrip("/")) if where == "base" else None
    return f"{m['type']}/{m['id']}" if m else None


def normalise(resource: Mapping[str, Any], key: str, registered: str,
              declared: Iterable[str] = ()) -> Normalised:
    """``resource`` (held under ``key``) with every ``Reference.reference`` rewritten
    to a key, its contained resources returned under ``{key}#{id}``, and the
    references to other servers listed. A reference that cannot be followed loses
    its ``reference`` (its ``display`` stays)."""
    declared = tuple(declared)
    out = Normalised({})
    inner = [c for c in resource.get("contained") or [] if isinstance(c, dict)
             and isinstance(c.get("id"), str)][:MAX_CONTAINED]
    ids = {c["id"] for c in inner}

    def rewrite(value: Any) -> Any:
        if isinstance(value, list):
            return [rewrite(v) for v in value]
        if not isinstance(value, dict):
            return value
        copy = {k: rewrite(v) for k, v in value.items() if k != "contained"}
        text = value.get("reference")
        if isinstance(text, str):
            copy.pop("reference")
            if (m := CONTAINED.match(text.strip())) and m["id"] in ids:
                copy["reference"] = f"{key}#{m['id']}"
            else:
                found = reference_key(text, registered, declared)
                if isinstance(found, Foreign):
                    out.foreign.append(found)
                elif found:
                    copy["reference"] = found
        return copy

    out.resource = rewrite(dict(resource))
    for c in inner:
        out.contained[f"{key}#{c['id']}"] = rewrite(c)
    return out
