"""Load test of the scoring service on loopback (needs `make run` first, or LAKEHOUSE_ROOT).

Starts `python -m resources.serving.app` on a free 127.0.0.1 port over the lakehouse, then:

1. single flights, open loop at RATE requests/s for REQUESTS requests (latency counted from each
   request's scheduled send time, so a stall is not hidden by requests that were never sent);
2. 1,000-flight requests (a whole day at one airport), BATCHES of them back to back;
3. single flights, closed loop with 4 connections: the most this machine serves;
4. NEW single flights the deliveries do not hold, back to back (features computed per request).

Requests are delivered flights of one week (warmed first: the first request of a day loads its
inputs from the catalog, ~0.3 s). Everything is bounded: REQUESTS and BATCHES requests, and at
most DEADLINE_S seconds per phase. The load generator shares the machine's 2 cores with the server.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from resources.catalog.publish import connect_catalog  # noqa: E402
from resources.core.settings import Settings  # noqa: E402

RATE, REQUESTS, BATCHES, NEW, DEADLINE_S = 100, 1000, 20, 200, 60
WEEK = [date(2013, 6, 3) + timedelta(days=i) for i in range(7)]


def flights_of(settings: Settings, days: list[date]) -> list[dict]:
    with connect_catalog(settings) as con:
        rows = con.execute(
            "select flight_date, carrier, flight_number, origin, dest, scheduled_departure_local, "
            "scheduled_arrival_local from curated.fct_flights where flight_date between ? and ? order by flight_id",
            [min(days), max(days)],
        ).fetchall()
    return [
        {
            "date": d.isoformat(),
            "carrier": c,
            "flight_number": n,
            "origin": o,
            "dest": de,
            "scheduled_departure": "24:00" if dep.date() > d else dep.strftime("%H:%M"),
            "scheduled_arrival": arr.strftime("%H:%M"),
        }
        for d, c, n, o, de, dep, arr in rows
    ]


class Client:
    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, body: dict) -> tuple[int, dict]:
        self.conn.request("POST", "/v1/score", json.dumps(body), {"content-type": "application/json"})
        r = self.conn.getresponse()
        return r.status, json.loads(r.read())


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def summary(name: str, lat: list[float], seconds: float, flights_per_request: int, errors: int) -> str:
    ms = [x * 1000 for x in lat]
    return (
        f"{name}: {len(lat)} requests in {seconds:.1f} s = {len(lat) / seconds:.0f} req/s, "
        f"{len(lat) * flights_per_request / seconds:,.0f} flights/s; latency p50 {pct(ms, 50):.1f} ms, "
        f"p99 {pct(ms, 99):.1f} ms, max {max(ms):.1f} ms; errors {errors}"
    )


def open_loop(port: int, flights: list[dict], rate: int, n: int) -> str:
    rng = random.Random(0)
    bodies = [{"flights": [rng.choice(flights)]} for _ in range(n)]
    start = time.perf_counter() + 0.2
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    nxt = [0]

    def worker() -> None:
        client = Client(port)
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= n:
                return
            due = start + i / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            if time.perf_counter() - start > DEADLINE_S:
                return
            status, _ = client.post(bodies[i])
            with lock:
                lat.append(time.perf_counter() - due)
                errors[0] += status != 200

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return summary(f"single flight, open loop at {rate} req/s", lat, time.perf_counter() - start, 1, errors[0])


def closed_loop(port: int, bodies: list[dict], connections: int, name: str, per_request: int) -> str:
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    queue = list(bodies)
    started = time.perf_counter()

    def worker() -> None:
        client = Client(port)
        while time.perf_counter() - started < DEADLINE_S:
            with lock:
                if not queue:
                    return
                body = queue.pop()
            t0 = time.perf_counter()
            status, _ = client.post(body)
            with lock:
                lat.append(time.perf_counter() - t0)
                errors[0] += status != 200

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return summary(name, lat, time.perf_counter() - started, per_request, errors[0])


def main() -> int:
    settings = Settings.from_env()
    flights = flights_of(settings, WEEK)
    if not flights:
        print(f"no flights of {WEEK[0]}..{WEEK[-1]} in {settings.catalog_path}: run `make run` first")
        return 1
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "SERVE_PORT": str(port), "LAKEHOUSE_ROOT": str(settings.root)}
    server = subprocess.Popen([sys.executable, "-m", "resources.serving.app"], cwd=ROOT, env=env)
    try:
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        warm = Client(port)
        for day in WEEK:  # one request per day loads the day's inputs into the service's cache
            status, body = warm.post({"flights": [f for f in flights if f["date"] == day.isoformat()][:1]})
            assert status == 200, body
        print(open_loop(port, flights, RATE, REQUESTS), flush=True)
        rng = random.Random(1)
        size = 1000  # flights of the whole week, so one request spans several days
        batches = [{"flights": rng.sample(flights, size)} for _ in range(BATCHES)]
        print(closed_loop(port, batches, 1, f"{size}-flight requests, back to back", size), flush=True)
        singles = [{"flights": [rng.choice(flights)]} for _ in range(REQUESTS)]
        print(closed_loop(port, singles, 4, "single flight, closed loop, 4 connections", 1), flush=True)
        # Flights the deliveries do not hold (a new flight number): features computed per request.
        new = [{"flights": [rng.choice(flights) | {"flight_number": 9000 + i % 999}]} for i in range(NEW)]
        print(closed_loop(port, new, 1, "new single flight (not delivered), back to back", 1), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
