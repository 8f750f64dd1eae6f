"""Health: does each service this instance depends on answer?"""

from __future__ import annotations

import time

from apiflask import APIBlueprint

from c3s.web.context import services
from c3s.web.schemas import HealthOut

bp = APIBlueprint("health", __name__, tag="Health")


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        ok = bool(check())
        error = None
    except Exception as exc:  # noqa: BLE001 - a health check reports any failure
        ok, error = False, f"{type(exc).__name__}: {exc}"
    result = {"ok": ok, "ms": round((time.perf_counter() - started) * 1000, 2)}
    if error:
        result["error"] = error
    return result


@bp.get("/health")
@bp.output(HealthOut)
@bp.doc(responses={503: "a service does not answer"})
def health():
    """Report whether the database, the file store and Redis answer (503 when one does not)."""
    svc = services()
    checks = {
        "database": _timed(svc.database.ping),
        "file_store": _timed(lambda: svc.store.ping()),
    }
    if svc.redis is not None:
        checks["redis"] = _timed(svc.redis.ping)
    ok = all(c["ok"] for c in checks.values())
    if ok:
        return {"ok": ok, "checks": checks}
    return {"ok": ok, "checks": checks}, 503, {"Retry-After": "2"}
