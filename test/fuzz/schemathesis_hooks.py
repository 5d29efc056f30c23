"""Lagoon's own schemathesis check (loaded through SCHEMATHESIS_HOOKS by test/fuzz/schemathesis.sh).

It replaces `not_a_server_error`, which fails every 5xx: a Lagoon node answers 503/504 by design when a request's
own bound cannot be met (a bounded read with maxStaleMs=0, a strong or session read with timeoutMs=0, a write with
a 100 ms deadline on a busy machine). Those are allowed, by code; every other 5xx fails, and so does any 4xx/5xx
that is not problem+json with a stable `code`.
"""

import json

import schemathesis

# The request's own bound (maxStaleMs, maxLag, timeoutMs, a session token ahead of the replica) was not met.
BOUND_NOT_MET = {"too_stale", "strong_timeout", "session_timeout"}
# A write whose deadline (?timeoutMs, at least 100 ms) passed before Kafka took it.
DEADLINE_MISSED = {"write_deadline_passed", "write_outcome_unknown", "kafka_unavailable"}


def _short_deadline(case) -> bool:
    raw = (case.query or {}).get("timeoutMs")
    try:
        return raw is not None and int(raw) < 2000
    except (TypeError, ValueError):
        return False


@schemathesis.check
def lagoon_problem_details(ctx, response, case):
    """4xx/5xx are application/problem+json with a code; 5xx only for a bound or deadline the request set."""
    status = response.status_code
    if status < 400:
        return None
    ctype = (response.headers.get("content-type") or [""])[0]
    if not ctype.startswith("application/problem+json"):
        raise AssertionError(f"{status} answered as {ctype!r}, not application/problem+json")
    try:
        body = json.loads(response.content)
    except ValueError as e:
        raise AssertionError(f"{status} problem body is not JSON: {e}") from None
    code = body.get("code") if isinstance(body, dict) else None
    if not isinstance(code, str) or not code:
        raise AssertionError(f"{status} problem without a code: {body!r}")
    if status < 500:
        return None
    if status in (503, 504) and code in BOUND_NOT_MET:
        return None
    if status in (503, 504) and code in DEADLINE_MISSED and _short_deadline(case):
        return None
    raise AssertionError(f"server error {status} {code}: {body.get('detail')}")
