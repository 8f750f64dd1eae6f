"""A crowd of simulated pixel phones, run as a separate process by tests/load/test_phones.py.

`join`: each phone becomes a guest and joins the scene in one POST, as the pixel page does
(one phone in :data:`OLD_PATH_EVERY` takes the older two POSTs, guest then join).
`checkin`: each phone checks in once with its device token (its pixel and the show's timeline
head in one GET), as the pixel page does every few seconds.
`track`: each phone fetches its own track once with its device token, as the pixel page does
before the show. Many keep-alive connections in threads; prints one JSON object with counts,
errors, throughput and latency percentiles, and writes the phones' tokens to a file."""

from __future__ import annotations

import http.client
import json
import queue
import statistics
import sys
import threading
import time


def _request(conn: http.client.HTTPConnection, method: str, path: str, token: str | None = None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = b"{}" if method == "POST" else None
    started = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    return response.status, data, time.perf_counter() - started


OLD_PATH_EVERY = 50


def _join(conn, scene_id: int, index: int) -> tuple[list[tuple[int, float]], dict | None]:
    if index % OLD_PATH_EVERY:
        status, data, elapsed = _request(conn, "POST", f"/api/scenes/{scene_id}/guests")
        body = json.loads(data) if status == 201 else {}
        return [(status, elapsed)], ({"token": body["token"], "number": body["number"]} if status == 201 else None)
    status, data, elapsed = _request(conn, "POST", "/api/guests")
    timings = [(status, elapsed)]
    if status != 201:
        return timings, None
    token = json.loads(data)["token"]
    status, data, elapsed = _request(conn, "POST", f"/api/scenes/{scene_id}/join", token)
    timings.append((status, elapsed))
    return timings, ({"token": token, "number": json.loads(data)["number"]} if status == 201 else None)


def _check_in(conn, scene_id: int, phone) -> tuple[list[tuple[int, float]], dict | None]:
    status, data, elapsed = _request(conn, "GET", f"/api/scenes/{scene_id}/me?show=1", phone["token"])
    if status != 200:
        return [(status, elapsed)], None
    me = json.loads(data)
    return [(status, elapsed)], {"number": phone["number"], "me_number": me["number"], "status": me["status"],
                                 "show_status": me["show"]["status"], "maps_version": me["show"]["maps_version"]}


def _track(conn, scene_id: int, phone) -> tuple[list[tuple[int, float]], dict | None]:
    status, data, elapsed = _request(conn, "GET", f"/api/scenes/{scene_id}/pixels/{phone['number']}/track",
                                     phone["token"])
    if status != 200:
        return [(status, elapsed)], None
    track = json.loads(data)
    return [(status, elapsed)], {"number": phone["number"], "colors": track["colors"]}


def _worker(port, scene_id, step, work: queue.Queue, results: list, timings: list, lock):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while True:
        try:
            item = work.get_nowait()
        except queue.Empty:
            break
        try:
            got, result = step(conn, scene_id, item)
        except (OSError, http.client.HTTPException, ValueError):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            got, result = [(0, 0.0)], None
        with lock:
            timings.extend(got)
            if result is not None:
                results.append(result)
    conn.close()


def main() -> None:
    phase, port, scene_id, phones, connections, path = sys.argv[1:7]
    port, scene_id, phones, connections = int(port), int(scene_id), int(phones), int(connections)
    work: queue.Queue = queue.Queue()
    if phase == "join":
        step = _join
        for index in range(phones):
            work.put(index)
    else:
        step = _check_in if phase == "checkin" else _track
        with open(path) as handle:
            for phone in json.load(handle):
                work.put(phone)
    results, timings, lock = [], [], threading.Lock()
    started = time.perf_counter()
    threads = [threading.Thread(target=_worker, args=(port, scene_id, step, work, results, timings, lock))
               for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    with open(path if phase == "join" else f"{path}.{phase}", "w") as handle:
        json.dump(results, handle)
    latencies = sorted(t for _, t in timings)
    print(json.dumps({
        "phase": phase, "phones": phones, "completed": len(results), "requests": len(timings),
        "errors": sum(1 for status, _ in timings if status not in (200, 201)),
        "seconds": round(wall, 2), "requests_per_s": round(len(timings) / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 2),
    }))


if __name__ == "__main__":
    main()
