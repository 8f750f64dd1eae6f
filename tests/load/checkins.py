"""Simulated pixel phones checking in on the pixel page's schedule, run as a separate process by
tests/load/test_start_lead.py.

Each phone joined at a random moment, so its first check-in falls anywhere in one interval; then
it checks in every CHECKIN_MS, spread by +-CHECKIN_JITTER (c3s/checkin.py, what the page uses). A
check-in is the page's `GET /api/scenes/N/me?show=1` (its pixel and the show's timeline head); a
phone that sees a start it has no track for fetches its track, both with its device token. Prints one JSON object: when each phone
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

STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class Crowd:
    def __init__(self, port: int, scene_id: int, phones: list[dict], seconds: float):
        self.port, self.scene_id, self.phones = port, scene_id, phones
        self.rng = random.Random(7)
        now = time.time() * 1000
        self.due = [(now + self.rng.uniform(0, CHECKIN_MS), i) for i in range(len(phones))]
        heapq.heapify(self.due)
        self.stop_at = now + seconds * 1000
        self.have: dict[int, int | None] = {}
        self.got: dict[str, dict[int, float]] = {}
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def next_job(self) -> int | None:
        with self.lock:
            if not self.due or self.due[0][0] > self.stop_at:
                return None
            at, i = heapq.heappop(self.due)
        wait = at / 1000 - time.time()
        if wait > 0:
            time.sleep(wait)
        return i

    def check_in(self, conn, i: int) -> None:
        started = time.perf_counter()
        auth = {"Authorization": f"Bearer {self.phones[i]['token']}"}
        conn.request("GET", f"/api/scenes/{self.scene_id}/me?show=1", headers=auth)
        response = conn.getresponse()
        body = json.loads(response.read())
        self.latencies.append(time.perf_counter() - started)
        if response.status != 200:
            self.errors.append(f"me {response.status}")
            return
        show = body["show"]
        start = show["start_ms"]
        if start is None or show["phase"] not in ("before", "playing") or self.have.get(i) == start:
            return
        conn.request("GET", f"/api/scenes/{self.scene_id}/pixels/{self.phones[i]['number']}/track",
                     headers=auth)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            self.errors.append(f"track {response.status}")
            return
        self.have[i] = start
        with self.lock:
            self.got.setdefault(str(start), {})[self.phones[i]["number"]] = time.time() * 1000

    def _connect(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def worker(self) -> None:
        conn = self._connect()
        while (i := self.next_job()) is not None:
            for attempt in range(2):
                try:
                    self.check_in(conn, i)
                    break
                except (OSError, http.client.HTTPException) as error:
                    conn.close()
                    conn = self._connect()
                    # The server closed an idle keep-alive connection: a browser retries at
                    # once on a new one, and so does a phone here (once).
                    if attempt or not isinstance(error, STALE):
                        self.errors.append(repr(error))
                        break
            with self.lock:
                spread = self.rng.uniform(1 - CHECKIN_JITTER, 1 + CHECKIN_JITTER)
                heapq.heappush(self.due, (time.time() * 1000 + CHECKIN_MS * spread, i))
        conn.close()

    def run(self, connections: int) -> dict:
        threads = [threading.Thread(target=self.worker) for _ in range(connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        latencies = sorted(self.latencies)
        return {"phones": len(self.phones), "check_ins": len(latencies), "errors": len(self.errors),
                "first_errors": self.errors[:5], "got_track_ms": self.got,
                "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
                "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else None}


if __name__ == "__main__":
    port, scene_id, phones_file, seconds, connections = sys.argv[1:6]
    with open(phones_file) as f:
        phones = json.load(f)
    print(json.dumps(Crowd(int(port), int(scene_id), phones, float(seconds)).run(int(connections))))
