"""The scoring service: a real uvicorn server on 127.0.0.1 over a real lakehouse (Jan-Feb 2013 with
a promoted model, batch scores and a published catalog), started and stopped by fixtures."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from resources.catalog.publish import connect_catalog
from resources.ml.features.catalog import FEATURE_NAMES
from resources.ml.lake import read_features
from resources.ml.model.scoring import read_scores
from resources.ml.registry.storage import Registry, new_version
from resources.serving.requests import MAX_FLIGHTS, RequestError, decode_body, parse_request

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2013, 2, 20)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(root: Path):
    port = _free_port()
    env = {**os.environ, "LAKEHOUSE_ROOT": str(root), "LAKEHOUSE_ENV": "dev", "SERVE_PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "resources.serving.app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                raise AssertionError(f"service exited {proc.returncode}: {proc.stdout.read()}")
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def call(url: str, path: str, body=None, raw: bytes | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(
        url + path,
        data=data,
        method="POST" if data is not None else "GET",
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def delivered_requests(settings, day: date, n: int | None = None) -> list[dict]:
    """The day's delivered flights as requests (tail number left out: the catalog holds only its
    pseudonym, so the service takes the delivered flight's)."""
    with connect_catalog(settings) as con:
        rows = con.execute(
            "select flight_date, carrier, flight_number, origin, dest, scheduled_departure_local, "
            "scheduled_arrival_local from curated.fct_flights where flight_date = ? order by flight_id",
            [day],
        ).fetchall()
    return [
        {
            "date": d.isoformat(),
            "carrier": c,
            "flight_number": n_,
            "origin": o,
            "dest": de,
            "scheduled_departure": "24:00" if dep.date() > d else dep.strftime("%H:%M"),
            "scheduled_arrival": arr.strftime("%H:%M"),
        }
        for d, c, n_, o, de, dep, arr in rows
    ][:n]


@pytest.fixture(scope="module")
def service(ml_lakehouse):
    with serving(ml_lakehouse.settings.root) as url:
        yield url


@pytest.mark.fast
def test_request_fields_are_checked_and_named():
    good = {
        "date": "2013-02-20",
        "carrier": "UA",
        "flight_number": 1545,
        "origin": "EWR",
        "dest": "IAH",
        "scheduled_departure": "05:15",
        "scheduled_arrival": "08:19",
    }
    (f,) = parse_request(good)
    assert f.flight_id == "20130220-UA-1545-EWR-0515" and f.sched_arr_time == 819 and f.tailnum is None
    bad = [
        ({"scheduled_departure": "5:15"}, "flights[0].scheduled_departure"),
        ({"scheduled_arrival": "25:00"}, "flights[0].scheduled_arrival"),
        ({"date": "2013-02-30"}, "flights[0].date"),
        ({"flight_number": "1545"}, "flights[0].flight_number"),
        ({"flight_number": True}, "flights[0].flight_number"),
        ({"carrier": "UA'; drop table x; --"}, "flights[0].carrier"),
        ({"origin": "$(rm -rf /)"}, "flights[0].origin"),
        ({"tailnum": "`id`"}, "flights[0].tailnum"),
        ({"gate": "B12"}, "flights[0].gate"),
    ]
    for change, field in bad:
        with pytest.raises(RequestError) as err:
            parse_request({"flights": [good | change]})
        assert err.value.field == field and err.value.status == 400, (change, err.value)
    with pytest.raises(RequestError, match="repeats flights\\[0\\]"):
        parse_request({"flights": [good, good]})
    with pytest.raises(RequestError) as err:
        parse_request({"flights": [good] * (MAX_FLIGHTS + 1)})
    assert err.value.status == 413
    for body in ([], {"flights": []}, {"flights": "x"}, {"flights": [good], "x": 1}, "text"):
        with pytest.raises(RequestError):
            parse_request(body)


def test_served_scores_equal_batch_scores_with_the_same_features(service, ml_lakehouse):
    settings = ml_lakehouse.settings
    flights = delivered_requests(settings, DAY)
    assert len(flights) > 800  # every flight of the day, cancelled ones (no tail number) included
    status, body = call(service, "/v1/score", {"flights": flights})
    assert status == 200, body
    served = pl.DataFrame(
        [{"flight_id": s["flight_id"], "served": s["p_late"], "schedule": s["schedule"]} for s in body["scores"]]
    )
    batch = read_scores(settings, DAY, DAY + timedelta(days=1))
    joined = batch.join(served, on="flight_id", how="full", coalesce=True)
    assert joined.height == batch.height == len(flights) and joined["served"].null_count() == 0
    assert (joined["served"] - joined["p_late"]).abs().max() <= 1e-9
    assert set(served["schedule"]) == {"delivered"}
    assert {s["model_version"] for s in body["scores"]} == {body["model_version"]} == set(batch["model_version"])
    # Minutes after midnight are the request's clock (they once wrapped in Int8: 06:00 gave 104).
    for sent, got in zip(flights, body["scores"]):
        hh, mm = sent["scheduled_departure"].split(":")
        assert got["features"]["sched_dep_minute_of_day"] == (int(hh) * 60 + int(mm)) % 1440, sent
        hh, mm = sent["scheduled_arrival"].split(":")
        assert got["features"]["sched_arr_minute_of_day"] == int(hh) * 60 + int(mm), sent
    # The feature values returned are the batch feature file's.
    features = read_features(settings, DAY, DAY + timedelta(days=1)).sort("flight_id")
    returned = pl.DataFrame([s["features"] for s in body["scores"]], schema=features.select(FEATURE_NAMES).schema)
    order = pl.Series([s["flight_id"] for s in body["scores"]])
    assert (
        returned.with_columns(flight_id=order)
        .sort("flight_id")
        .drop("flight_id")
        .equals(features.select(FEATURE_NAMES))
    )


def test_a_new_flight_joins_the_days_schedule_and_a_single_flight_is_answered(service, ml_lakehouse):
    known = delivered_requests(ml_lakehouse.settings, DAY)
    one = known[0]
    status, body = call(service, "/v1/score", one)  # a bare flight object is a one-flight request
    assert status == 200 and len(body["scores"]) == 1 and body["scores"][0]["schedule"] == "delivered"
    new = one | {"flight_number": 9999, "tailnum": "N14228"}
    status, body = call(service, "/v1/score", {"flights": [new]})
    assert status == 200, body
    (score,) = body["scores"]
    assert score["schedule"] == "request" and 0 < score["p_late"] < 1
    same_origin = sum(f["origin"] == one["origin"] for f in known)
    assert score["features"]["origin_day_departures"] == same_origin + 1
    # Changing a delivered flight's schedule is a new answer computed from the request's schedule.
    moved = one | {"dest": "ORD" if one["dest"] != "ORD" else "ATL"}
    status, body = call(service, "/v1/score", moved)
    assert status == 200 and body["scores"][0]["schedule"] == "request"
    assert body["scores"][0]["features"]["dest"] == moved["dest"]


def test_bad_requests_get_a_4xx_naming_the_field(service, ml_lakehouse):
    one = delivered_requests(ml_lakehouse.settings, DAY, 1)[0]
    cases = [
        (one | {"origin": "ZZZ"}, 400, "flights[0].origin"),
        (one | {"dest": "QQQ"}, 400, "flights[0].dest"),
        (one | {"carrier": "Q9"}, 400, "flights[0].carrier"),
        (one | {"scheduled_departure": "7pm"}, 400, "flights[0].scheduled_departure"),
        (one | {"date": "2014-06-01"}, 422, "flights[0].date"),
        (one | {"carrier": "$(touch /tmp/x)`id`'\""}, 400, "flights[0].carrier"),
        ({"flights": [one] * (MAX_FLIGHTS + 1)}, 413, "flights"),
    ]
    for body, status, field in cases:
        got, answer = call(service, "/v1/score", body)
        assert (got, answer["field"]) == (status, field), (body, answer)
        assert answer["error"]
    for raw in (b"{not json", b"\xff\xfe", b"[]", b'"x"', b"null"):
        got, answer = call(service, "/v1/score", raw=raw)
        assert got == 400 and answer["error"], raw
    got, answer = call(service, "/v1/score", raw=b" " * 1_000_001)
    assert got == 413 and answer["field"] == "body"


def test_model_and_health_describe_the_verified_production_model(service, ml_lakehouse):
    registry = Registry(ml_lakehouse.settings)
    status, body = call(service, "/v1/model")
    assert status == 200
    assert body["model_version"] == registry.production_version()
    assert body["holdout"]["test"]["roc_auc"] == registry.record(body["model_version"])["test"]["roc_auc"]
    approval = [
        e for e in registry.audit() if e["event"] in ("promoted", "rolled_back") and e.get("horizon") == "day_ahead"
    ][-1]
    assert approval["version"] == body["model_version"]
    assert body["horizons"]["day_ahead"]["model_version"] == body["model_version"]
    assert body["horizons"]["nowcast_2h"]["model_version"] == registry.production_version("nowcast_2h")
    assert {k: body["approval"][k] for k in ("event", "actor", "reason")} == {
        k: approval[k] for k in ("event", "actor", "reason")
    }
    status, health = call(service, "/healthz")
    assert status == 200 and health["model_version"] == body["model_version"]


def test_promotion_and_rollback_are_picked_up_and_a_forged_registry_is_refused(ml_lakehouse, tmp_path):
    src = ml_lakehouse.settings.root
    root = tmp_path / "lakehouse"
    shutil.copytree(src, root)
    shutil.copytree(src.parent / f"{src.name}.secrets", tmp_path / "lakehouse.secrets")
    from resources.core.settings import Settings

    settings = Settings(root=root, env="dev")
    registry = Registry(settings)
    first = registry.production_version()
    one = delivered_requests(settings, DAY, 1)[0]
    with serving(root) as url:
        assert call(url, "/v1/score", one)[1]["model_version"] == first
        # A second model through the real lifecycle: registered, pre-production passed, approved.
        record = registry.record(first)
        second = new_version()
        registry.register(
            registry.load(first),
            {k: v for k, v in record.items() if not k.startswith(("artifact_", "reference_", "registered_at", "mac"))}
            | {"model_version": second},
        )
        registry.record_preproduction(second, True, {"checks": "pytest"})
        registry.promote(second, "pytest", "pick-up without restart", candidate_auc=0.99, production_auc=0.5)
        status, body = call(url, "/v1/score", one)
        assert status == 200 and body["scores"][0]["model_version"] == second
        assert call(url, "/v1/model")[1]["approval"]["reason"] == "pick-up without restart"
        registry.rollback("pytest", "back")
        assert call(url, "/v1/score", one)[1]["model_version"] == first
        # A hand-edited audit trail: every request is refused (503) until it verifies again.
        audit = root / "ml" / "registry" / "audit.jsonl"
        good = audit.read_text()
        audit.write_text(good.replace('"actor": "pytest"', '"actor": "mallory"', 1))
        status, body = call(url, "/v1/score", one)
        assert status == 503 and "does not verify" in body["error"]
        assert call(url, "/healthz")[0] == 503
        audit.write_text(good)
        assert call(url, "/v1/score", one)[0] == 200
    # ... and it does not start on a forged artifact.
    artifact = root / registry.record(first)["artifact_path"]
    artifact.write_bytes(artifact.read_bytes() + b"\0")
    env = {**os.environ, "LAKEHOUSE_ROOT": str(root), "LAKEHOUSE_ENV": "dev", "SERVE_PORT": str(_free_port())}
    done = subprocess.run(
        [sys.executable, "-m", "resources.serving.app"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and "refuses to start" in done.stderr and "does not verify" in done.stderr


@pytest.mark.fast
def test_prediction_time_fields_are_checked_and_named():
    from resources.serving.requests import parse_prediction_time

    assert parse_prediction_time({"flights": []}).horizon == "day_ahead"
    when = parse_prediction_time({"horizon": "nowcast_2h", "as_of": "2013-02-20T03:30:00Z"})
    assert when.horizon == "nowcast_2h" and when.as_of.isoformat() == "2013-02-20T03:30:00+00:00"
    for body, field in (
        ({"horizon": "next_week"}, "horizon"),
        ({"as_of": "2013-02-20"}, "as_of"),
        ({"as_of": "2013-02-20T03:30:00"}, "as_of"),  # no offset: whose 03:30?
        ({"as_of": "2013-W08-3T03:30Z"}, "as_of"),
        ({"as_of": "2013-02-30T03:30:00Z"}, "as_of"),
        ({"as_of": 1361331000}, "as_of"),
        ({"as_of": "$(date)"}, "as_of"),
    ):
        with pytest.raises(RequestError) as err:
            parse_prediction_time(body)
        assert err.value.field == field and err.value.status == 400, body


def test_a_prediction_is_answered_as_of_its_own_time_and_never_before_it(service, ml_lakehouse):
    (flight,) = delivered_requests(ml_lakehouse.settings, DAY, 1)
    # The day-ahead prediction of Feb 20 is made at 22:00 New York time on Feb 19: 03:00 UTC.
    status, body = call(service, "/v1/score", {"flights": [flight], "as_of": "2013-02-20T03:00:00Z"})
    assert status == 200, body
    (score,) = body["scores"]
    assert score["horizon"] == "day_ahead" and score["as_of"] == "2013-02-20T03:00:00+00:00"
    status, body = call(service, "/v1/score", {"flights": [flight], "as_of": "2013-02-19T21:59:00-05:00"})
    assert status == 422 and body["field"] == "as_of" and "22:00 New York time" in body["error"], body


def test_a_nowcast_answer_equals_the_batch_nowcast_and_exists_two_hours_before_departure(service, ml_lakehouse):
    settings = ml_lakehouse.settings
    flights = delivered_requests(settings, DAY)
    status, body = call(service, "/v1/score", {"flights": flights, "horizon": "nowcast_2h"})
    assert status == 200, body
    nowcast = Registry(settings).production_version("nowcast_2h")
    assert nowcast and nowcast != Registry(settings).production_version()
    served = pl.DataFrame(
        [
            {
                "flight_id": s["flight_id"],
                "served": s["p_late"],
                "served_as_of": s["as_of"],
                "horizon": s["horizon"],
                "version": s["model_version"],
            }
            for s in body["scores"]
        ]
    )
    assert set(served["horizon"]) == {"nowcast_2h"} and set(served["version"]) == {nowcast}
    batch = read_scores(settings, DAY, DAY + timedelta(days=1), "nowcast_2h")
    assert set(batch["horizon"]) == {"nowcast_2h"} and set(batch["model_version"]) == {nowcast}
    joined = batch.join(served, on="flight_id", how="full", coalesce=True)
    assert joined.height == batch.height == len(flights) and joined["served"].null_count() == 0
    assert (joined["served"] - joined["p_late"]).abs().max() <= 1e-9
    assert (joined["served_as_of"] == joined["as_of"].dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")).all()
    # Every nowcast is made two hours before its scheduled departure, never later.
    with connect_catalog(settings) as con:
        dep = pl.from_arrow(
            con.sql(
                "select flight_id, scheduled_departure_utc from curated.fct_flights where flight_date = $1",
                params=[DAY],
            ).to_arrow_table()
        )
    made = batch.join(dep, on="flight_id")
    assert made.height == batch.height
    departure = pl.col("scheduled_departure_utc").dt.convert_time_zone("UTC")
    assert made.select((pl.col("as_of") <= departure - pl.duration(hours=2)).all()).item()
    # The served features are the nowcast feature file's, the day's operations included.
    features = read_features(settings, DAY, DAY + timedelta(days=1), "nowcast_2h").sort("flight_id")
    names = list(body["scores"][0]["features"])
    assert "ops_prev_leg_dep_delay" in names and len(names) > len(FEATURE_NAMES)
    returned = pl.DataFrame([s["features"] for s in body["scores"]], schema=features.select(names).schema)
    order = pl.Series([s["flight_id"] for s in body["scores"]])
    assert returned.with_columns(flight_id=order).sort("flight_id").drop("flight_id").equals(features.select(names))


def test_a_nowcast_is_refused_before_its_time_and_for_a_day_not_delivered(service, ml_lakehouse):
    (flight,) = delivered_requests(ml_lakehouse.settings, DAY, 1)
    one = {"flights": [flight], "horizon": "nowcast_2h"}
    status, body = call(service, "/v1/score", one)
    assert status == 200, body
    made = body["scores"][0]["as_of"]
    assert call(service, "/v1/score", one | {"as_of": made})[0] == 200
    status, body = call(service, "/v1/score", one | {"as_of": "2013-02-20T03:00:00Z"})  # the day-ahead time
    assert status == 422 and body["field"] == "as_of" and "two hours before" in body["error"], body
    # March 1st is the day after the last delivered one: its day-ahead prediction exists, its nowcast not.
    later = flight | {"date": "2013-03-01"}
    assert call(service, "/v1/score", {"flights": [later]})[0] == 200
    status, body = call(service, "/v1/score", {"flights": [later], "horizon": "nowcast_2h"})
    assert status == 422 and body["field"] == "flights[0].date" and "delivered operations" in body["error"], body


@pytest.mark.fast
def test_hostile_bodies_and_week_dates_are_a_400_naming_what_is_wrong():
    for raw, words in (
        (b"[" * 5000 + b"]" * 5000, "nests deeper"),
        (b'{"flights": ' + b"[" * 50 + b"]" * 50 + b"}", "nests deeper"),
        (b'{"flights": [{"flight_number": ' + b"9" * 5001 + b"}]}", "5001 digits"),
        (b'{"flights": [{"flight_number": NaN}]}', "NaN is not a JSON number"),
        (b"\xff\xfe", "not JSON"),
    ):
        with pytest.raises(RequestError, match=words) as err:
            decode_body(raw)
        assert err.value.status == 400 and err.value.field == "body"
    good = {
        "date": "2013-06-03",
        "carrier": "DL",
        "flight_number": 1547,
        "origin": "LGA",
        "dest": "ATL",
        "scheduled_departure": "06:00",
        "scheduled_arrival": "08:59",
    }
    for bad in ("2013-W23-1", "20130603", "2013-06-3 ", "２０１３-06-03"):
        with pytest.raises(RequestError, match="YYYY-MM-DD") as err:
            parse_request({"flights": [good | {"date": bad}]})
        assert err.value.field == "flights[0].date"
    huge = "A" * 100_000  # echoed back bounded, never whole
    with pytest.raises(RequestError) as err:
        parse_request({"flights": [good | {"carrier": huge}]})
    assert len(str(err.value)) < 300


def _drip(host: str, port: int, head: bytes, drip: bytes) -> bytes:
    """Send ``head`` at once, then ``drip`` one byte a second until the server answers or closes."""
    answer = b""
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(head)
        for byte in drip:
            try:
                s.sendall(bytes([byte]))
            except OSError:
                break
            s.settimeout(1)
            try:
                answer += s.recv(4096)
            except TimeoutError:
                continue
            if answer:
                break
    return answer


def test_hostile_bodies_over_http_are_4xx_and_a_slow_body_is_dropped(service):
    for raw in (b"[" * 5000 + b"]" * 5000, b'{"flights": [{"flight_number": ' + b"9" * 5001 + b"}]}"):
        status, body = call(service, "/v1/score", raw=raw)
        assert status == 400 and body["field"] == "body", body
    host, port = service.removeprefix("http://").split(":")
    slow_body = b"POST /v1/score HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"
    headers = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
    # A body, or the request line and headers, sent a byte a second: each has a deadline.
    for head, drip in ((slow_body, b" " * 40), (b"", headers + b"a" * 40)):
        started = time.monotonic()
        answer = _drip(host, int(port), head, drip)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert time.monotonic() - started < 20
    # A client that sends its headers at once is not affected, also on a kept-alive connection.
    # http.client frames each response, so a header and body arriving in two TCP reads is not misread.
    kept = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        for _ in range(2):
            kept.request("GET", "/healthz")
            response = kept.getresponse()
            assert response.status == 200 and json.loads(response.read())["status"] == "ok"
    finally:
        kept.close()


def test_the_service_is_not_a_tail_number_oracle(service, ml_lakehouse):
    import zipfile

    from resources.raw.sources import embedded_data_dir

    with zipfile.ZipFile(embedded_data_dir() / "flights.csv.zip") as zf:
        raw = pl.read_csv(zf.read("flights.csv"), infer_schema=False)
    flight = delivered_requests(ml_lakehouse.settings, DAY, 1)[0]
    true = raw.filter(
        (pl.col("month") == "2")
        & (pl.col("day") == "20")
        & (pl.col("carrier") == flight["carrier"])
        & (pl.col("flight") == str(flight["flight_number"]))
        & (pl.col("origin") == flight["origin"])
    )
    tail = true["tailnum"][0]
    assert tail
    answers = []
    for guess in (None, tail, tail[:-1] + ("X" if tail[-1] != "X" else "Y")):
        body = flight | ({"tailnum": guess} if guess else {})
        status, got = call(service, "/v1/score", {"flights": [body]})
        assert status == 200, got
        answers.append({k: got["scores"][0][k] for k in ("p_late", "schedule", "features")})
    assert answers[0] == answers[1] == answers[2]  # the true aircraft and a wrong guess answer alike


def test_the_service_path_reads_nothing_after_its_prediction_time(ml_lakehouse):
    """The time guard on the service's own path: a day as the service loads it from the catalog,
    request rows merged into its timetable (one new flight, so the answer is computed, not looked
    up), every row not known at each prediction time rewritten: no served feature moves."""
    from resources.core.pseudonym import load_key
    from resources.ml.features.availability import HORIZONS
    from resources.ml.features.time_guard import time_violations
    from resources.serving.service import features_for_day, load_catalog, load_day, request_rows

    settings = ml_lakehouse.settings
    cat, state, key = load_catalog(settings), load_day(settings, DAY), load_key(settings)
    known = delivered_requests(settings, DAY, 40)
    flights = parse_request({"flights": [known[0] | {"flight_number": 9999}, *known[1:]]})
    for horizon in HORIZONS:

        def served(inputs, start, end, horizon=horizon):
            day = type(state)(inputs, state.targets)
            rows = request_rows(flights, cat, day.targets.schema, key, day.targets)
            features, unchanged = features_for_day(day, start, rows, horizon)
            assert not all(unchanged)
            return features

        assert time_violations(state.inputs, DAY, horizon, build=served) == [], horizon
