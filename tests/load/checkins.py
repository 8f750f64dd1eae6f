"""Simulated pixel phones checking in on the pixel page's schedule, run as a separate process by
tests/load/test_start_lead.py.

Each phone joined at a random moment, so its first check-in falls anywhere in one interval; then
it checks in every CHECKIN_MS, spread by +-CHECKIN_JITTER (c3s/checkin.py, what the page uses). A
check-in is the page's `GET /api/scenes/N/show?frames=false`; a phone that sees a start it has
no track for fetches its track with its device token. Prints one JSON object: when each phone
got its track for each start (server ms), and the requests' errors and latency."""

from __future__ import annotations

import heapq
import http.client
import json
import random
import sys
import threading
import time

from c3s.checkin import CHECKIN_JITTER, CHECKIN_MS


def run(port: int, scene_id: int, phones: list[dict], seconds: float, connections: int) -> dict:
    rng = random.Random(7)
    now = time.time() * 1000
    due = [(now + rng.uniform(0, CHECKIN_MS), i) for i in range(len(phones))]
    heapq.heapify(due)
    have: dict[int, int | None] = {}
    got: dict[str, dict[int, float]] = {}
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = now + seconds * 1000

    def next_job():
        with lock:
            if not due or due[0][0] > stop_at:
                return None
            at, i = heapq.heappop(due)
        wait = at / 1000 - time.time()
        if wait > 0:
            time.sleep(wait)
        return i

    def check_in(conn, i: int) -> None:
        started = time.perf_counter()
        conn.request("GET", f"/api/scenes/{scene_id}/show?frames=false")
        response = conn.getresponse()
        show = json.loads(response.read())
        latencies.append(time.perf_counter() - started)
        if response.status != 200:
            errors.append(f"show {response.status}")
            return
        start = show["start_ms"]
        if start is None or show["phase"] not in ("before", "playing") or have.get(i) == start:
            return
        conn.request("GET", f"/api/scenes/{scene_id}/pixels/{phones[i]['number']}/track",
                     headers={"Authorization": f"Bearer {phones[i]['token']}"})
        response = conn.getresponse()
        response.read()
        if response.status == 200:
            have[i] = start
            with lock:
                got.setdefault(str(start), {})[phones[i]["number"]] = time.time() * 1000
        else:
            errors.append(f"track {response.status}")

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while (i := next_job()) is not None:
            for attempt in range(2):
                try:
                    check_in(conn, i)
                    break
                except (OSError, http.client.HTTPException) as error:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    # The server closed an idle keep-alive connection: a browser retries at
                    # once on a new one, and so does a phone here (once).
                    stale = isinstance(error, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError)
                    if attempt or not stale:
                        errors.append(repr(error))
                        break
            with lock:
                spread = rng.uniform(1 - CHECKIN_JITTER, 1 + CHECKIN_JITTER)
                heapq.heappush(due, (time.time() * 1000 + CHECKIN_MS * spread, i))
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    return {"phones": len(phones), "check_ins": len(latencies), "errors": len(errors),
            "first_errors": errors[:5], "got_track_ms": got,
            "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
            "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else None}


if __name__ == "__main__":
    port, scene_id, phones_file, seconds, connections = sys.argv[1:6]
    with open(phones_file) as f:
        phones = json.load(f)
    print(json.dumps(run(int(port), int(scene_id), phones, float(seconds), int(connections))))
