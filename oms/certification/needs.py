"""What a case needs and what a target offers: the tiers of DESIGN.md, the extensions a
system may add, and what the harness can do to a target.

Pure data. Three kinds of name:

- **tiers** a system under test must speak (DESIGN.md, "What a system under test must
  speak"): ``core`` (the five endpoints of the original specification), ``read``
  (``GET /order/{id}``), ``audit`` (``GET /order/{id}/events``). Mandatory cases need
  nothing else.
- **extensions** a system may offer beyond the contract: ``events_log`` (``GET /events``,
  the whole audit log in one answer), ``sql`` (its backend database, read directly).
  Never needed by a mandatory case.
- **operations** of the core tier that a face may lack: ``execute`` and ``listing`` (FIX
  has no message for either). A system offering ``core`` offers both unless its face says
  otherwise (``Offer.lacking``): a FIX-only system's cases that execute or list are NOT
  APPLICABLE there, with the reason.
- the **faces** ``raw_http``: requests sent byte for byte (malformed JSON, unknown
  fields, odd ids). Every HTTP system has it; the embedded engine has no HTTP face, so
  such cases do not apply to it. ``fix``: a FIX 4.4 session driven message by message
  (DESIGN.md's FIX face: logon, sequence numbers, resend, the execution reports).
- **faculties** of the harness over a target, not of the system: ``restart`` (stop and
  start it on the same database), ``crash`` (kill -9 of the process holding the database).

A case whose tier, extension or face the target does not offer is NOT APPLICABLE (never
FAIL, never PASS); a case needing a faculty the target lacks (a restart behind a bare
URL) is NOT RUN, and a mandatory one leaves the run INCOMPLETE.
"""

from __future__ import annotations

TIERS = ("core", "read", "audit")
OPERATIONS = ("execute", "listing")
"""Parts of the core tier a face may lack."""
EXTENSIONS = ("events_log", "sql")
FACES = ("raw_http", "fix")
FACULTIES = ("restart", "crash")
DEFAULT_FIX_IDS = ("CLIENT", "OMS")
"""The FIX session's CompIDs when the operator names none (the pack's SenderCompID, the
system's): ``oms serve``'s defaults."""
OFFERABLE = TIERS + EXTENSIONS
"""What a system offers (probed, or declared with ``--offers``)."""
ALL = TIERS + OPERATIONS + EXTENSIONS + FACES + FACULTIES

TEXT = {
    "core": "the core endpoints (POST/PUT/DELETE /order, execute, GET /orders)",
    "read": "GET /order/{id}",
    "audit": "GET /order/{id}/events",
    "events_log": "GET /events (the whole audit log)",
    "sql": "its backend database (DuckDB or PostgreSQL, the reference schema)",
    "execute": "execute (POST /order/{id}/execute)",
    "listing": "the listing (GET /orders)",
    "raw_http": "an HTTP face (raw requests)",
    "fix": "a FIX 4.4 face (sessions driven message by message)",
    "restart": "be restarted on the same database",
    "crash": "be killed with kill -9 and started again",
}


def parse_names(text: str, allowed: tuple[str, ...], option: str) -> frozenset[str]:
    """``"read,audit"`` -> {"read", "audit"}; ValueError naming an unknown name."""
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    unknown = sorted(names - set(allowed))
    if unknown:
        raise ValueError(f"{option}: unknown {', '.join(unknown)}; expected names from {', '.join(allowed)}")
    return names


def offer_text(offers: frozenset[str] | set[str], lacking: frozenset[str] | set[str] = frozenset()) -> str:
    """``core, read, audit; extensions: events_log`` -- what a verdict certifies (with the
    FIX face, ``; face: fix``; a core without some of its operations says which)."""
    tiers = [t for t in TIERS if t in offers]
    without = [o for o in OPERATIONS if o in lacking]
    if "core" in tiers and without:
        tiers[0] = f"core without {' and '.join(without)}"
    extensions = [e for e in EXTENSIONS if e in offers]
    out = f"{', '.join(tiers) or 'no tier'}; extensions: {', '.join(extensions) or 'none'}"
    return out + ("; face: fix" if "fix" in offers else "")
