"""Reading a scoring request: every field checked, every error naming the field it is about.

A request is ``{"flights": [ {...}, ... ]}`` (or one flight object on its own) with, per flight:

    date               "2013-02-14"  the scheduled (local) date of departure
    carrier            "UA"          airline code
    flight_number      1545          1..9999
    origin, dest       "EWR", "IAH"  airport codes
    scheduled_departure "05:15"      local time at the origin, 00:00..24:00 (24:00 ends the day)
    scheduled_arrival   "08:19"      local time at the destination; earlier than the departure
                                     means the next day (the deliveries' own rule)
    tailnum            "N14228"      optional: the aircraft, when the carrier has assigned one

These are exactly the schedule columns of the flights delivery (nothing known after departure), so
a served flight becomes the same kind of row the batch features are computed from.

Beside ``flights`` a request may say when it predicts: ``"horizon"`` (``day_ahead``, the default;
resources/ml/features/availability.py) and ``"as_of"``, an instant with its offset
(``"2013-02-20T03:30:00Z"``): the answer is the horizon's prediction, which reads only rows known at
its own prediction time, and a flight whose prediction time is after ``as_of`` is refused (422)
rather than answered with what was not known yet.
"""

from __future__ import annotations

import json
import re
import reprlib
from dataclasses import dataclass
from datetime import date, datetime

from resources.ml.features.availability import DAY_AHEAD, HORIZONS

# 1,000 flights is a whole day at one of the three airports (~330 departures a day each on the
# year, 1,000 at most); the 1,000-flight request took ~0.1 s to score here (benchmarks/serving_load.py).
MAX_FLIGHTS = 1000
MAX_BODY_BYTES = 1_000_000  # ~250 bytes per flight as JSON: 1,000 flights fit four times over

FIELDS = ("date", "carrier", "flight_number", "origin", "dest", "scheduled_departure", "scheduled_arrival", "tailnum")
REQUIRED = FIELDS[:-1]
_CODE = re.compile(r"[A-Z0-9]{2,3}")
_AIRPORT = re.compile(r"[A-Z0-9]{3,4}")
_CLOCK = re.compile(r"([0-9]{2}):([0-9]{2})")
_TAILNUM = re.compile(r"[A-Z0-9]{1,10}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # date.fromisoformat also takes week dates (2013-W23-1)
# A request is {"flights": [{...}]}: three levels. Deeper JSON is refused before it is walked (a
# few thousand levels once ended in a RecursionError, i.e. a 500).
MAX_DEPTH = 8
MAX_DIGITS = 18  # an integer field holds at most 9999; Python refuses to parse 4,300+ digits (a 500)
_REPR = reprlib.Repr()  # errors echo the offending value, bounded: never a megabyte or a deep nest
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict = 2, 40, 40, 4, 4
_shown = _REPR.repr


def _whole_number(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise RequestError(f"a number of {len(text)} digits in the body; at most {MAX_DIGITS}", "body")
    return int(text)


def _no_constant(text: str):
    raise RequestError(f"{text} is not a JSON number", "body")


def _depth(value) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            break
        if isinstance(item, dict):
            stack += [(v, level + 1) for v in item.values()]
        elif isinstance(item, list):
            stack += [(v, level + 1) for v in item]
    return deepest


def decode_body(raw: bytes):
    """The request body as JSON, or a 400 naming what is wrong: not JSON, nested deeper than
    MAX_DEPTH, a number too long to be a field, NaN or Infinity."""
    try:
        body = json.loads(raw, parse_int=_whole_number, parse_constant=_no_constant)
    except RecursionError:
        raise RequestError(f"the body nests deeper than {MAX_DEPTH} levels", "body") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(f"the body is not JSON: {exc}", "body") from None
    if _depth(body) > MAX_DEPTH:
        raise RequestError(f"the body nests deeper than {MAX_DEPTH} levels", "body")
    return body


class RequestError(ValueError):
    """Bad input: ``field`` names the offending value (``flights[3].origin``); HTTP ``status``."""

    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.field, self.status = field, status

    def as_json(self) -> dict:
        return {"error": str(self), "field": self.field}


@dataclass(frozen=True)
class ScheduledFlight:
    flight_date: date
    carrier: str
    flight_number: int
    origin: str
    dest: str
    sched_dep_time: int  # hhmm, as delivered (2400 = midnight ending the day)
    sched_arr_time: int
    tailnum: str | None

    @property
    def flight_id(self) -> str:
        """The id staging gives the same flight (stg_nycflights__flights.sql)."""
        return f"{self.flight_date:%Y%m%d}-{self.carrier}-{self.flight_number}-{self.origin}-{self.sched_dep_time:04d}"


def _clock(value, field: str) -> int:
    match = _CLOCK.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise RequestError(f'{field} must be a local time "HH:MM", got {_shown(value)}', field)
    hh, mm = int(match[1]), int(match[2])
    if not (hh < 24 and mm < 60 or (hh, mm) == (24, 0)):
        raise RequestError(f"{field} {_shown(value)} is not a time of day (00:00..23:59, or 24:00)", field)
    return hh * 100 + mm


def _code(value, pattern: re.Pattern, field: str, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise RequestError(f"{field} must be {what}, got {_shown(value)}", field)
    return value


def parse_flight(obj, where: str) -> ScheduledFlight:
    if not isinstance(obj, dict):
        raise RequestError(f"{where} must be an object with fields {', '.join(FIELDS)}", where)
    unknown = sorted(set(obj) - set(FIELDS))
    if unknown:
        name = unknown[0] if len(unknown[0]) <= 40 else _shown(unknown[0])
        raise RequestError(f"{where}.{name} is not a field (fields: {', '.join(FIELDS)})", f"{where}.{name}")
    for name in REQUIRED:
        if obj.get(name) is None:
            raise RequestError(f"{where}.{name} is required", f"{where}.{name}")
    raw_date = obj["date"]
    try:
        if not isinstance(raw_date, str) or not _DATE.fullmatch(raw_date):
            raise ValueError
        day = date.fromisoformat(raw_date)
    except ValueError:
        raise RequestError(
            f'{where}.date must be a date "YYYY-MM-DD", got {_shown(raw_date)}', f"{where}.date"
        ) from None
    number = obj["flight_number"]
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 9999:
        raise RequestError(
            f"{where}.flight_number must be a whole number 1..9999, got {_shown(number)}", f"{where}.flight_number"
        )
    tailnum = obj.get("tailnum")
    return ScheduledFlight(
        flight_date=day,
        carrier=_code(obj["carrier"], _CODE, f"{where}.carrier", 'an airline code such as "UA"'),
        flight_number=number,
        origin=_code(obj["origin"], _AIRPORT, f"{where}.origin", 'an airport code such as "EWR"'),
        dest=_code(obj["dest"], _AIRPORT, f"{where}.dest", 'an airport code such as "IAH"'),
        sched_dep_time=_clock(obj["scheduled_departure"], f"{where}.scheduled_departure"),
        sched_arr_time=_clock(obj["scheduled_arrival"], f"{where}.scheduled_arrival"),
        tailnum=None
        if tailnum is None
        else _code(tailnum, _TAILNUM, f"{where}.tailnum", 'a tail number such as "N14228" (or left out)'),
    )


OPTIONS = ("horizon", "as_of")
_INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?(Z|[+-][0-9]{2}:[0-9]{2})")


@dataclass(frozen=True)
class PredictionTime:
    horizon: str = DAY_AHEAD
    as_of: datetime | None = None  # None: now, i.e. every delivered day's prediction is known


def parse_prediction_time(body) -> PredictionTime:
    """The request's ``horizon`` and ``as_of`` (both optional)."""
    if not isinstance(body, dict):
        return PredictionTime()
    horizon = body.get("horizon", DAY_AHEAD)
    if horizon not in HORIZONS:
        raise RequestError(f"horizon must be one of {', '.join(HORIZONS)}, got {_shown(horizon)}", "horizon")
    raw = body.get("as_of")
    if raw is None:
        return PredictionTime(horizon)
    if not isinstance(raw, str) or not _INSTANT.fullmatch(raw):
        raise RequestError(
            f'as_of must be an instant with its offset such as "2013-02-20T03:30:00Z", got {_shown(raw)}', "as_of"
        )
    try:
        return PredictionTime(horizon, datetime.fromisoformat(raw.replace("Z", "+00:00")))
    except ValueError:
        raise RequestError(f"as_of {_shown(raw)} is not a valid instant", "as_of") from None


def parse_request(body) -> list[ScheduledFlight]:
    """The flights of a request body (already decoded JSON), in the order given."""
    if isinstance(body, dict) and "flights" not in body:
        body = {"flights": [body]}
    if not isinstance(body, dict) or not isinstance(body.get("flights"), list):
        raise RequestError('the body must be {"flights": [...]} or one flight object', "flights")
    items = body["flights"]
    extra = sorted(set(body) - {"flights", *OPTIONS})
    if extra:
        name = extra[0] if len(extra[0]) <= 40 else _shown(extra[0])
        raise RequestError(
            f'{name} is not a field of the request (only "flights", {", ".join(repr(o) for o in OPTIONS)})', name
        )
    if not items:
        raise RequestError("flights is empty: send at least one flight", "flights")
    if len(items) > MAX_FLIGHTS:
        raise RequestError(f"{len(items)} flights in one request; at most {MAX_FLIGHTS}", "flights", status=413)
    flights = [parse_flight(obj, f"flights[{i}]") for i, obj in enumerate(items)]
    seen: dict[str, int] = {}
    for i, f in enumerate(flights):
        if f.flight_id in seen:
            raise RequestError(f"flights[{i}] repeats flights[{seen[f.flight_id]}] ({f.flight_id})", f"flights[{i}]")
        seen[f.flight_id] = i
    return flights
