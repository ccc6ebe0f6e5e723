"""Scoring on request: each horizon's production model and the batch feature code, over the
published catalog.

A served flight of date D is scored from the lakehouse state as of D, exactly as batch scoring
scores it: ``build_features`` (resources/ml/features/point_in_time.py) at the horizon's prediction time over the
catalog's copy of the same curated tables (flights of the days before D and D's own schedule,
weather, aircraft registry versions, calendar). A flight D's published timetable holds, sent
with the same schedule, gets the features of the timetable's row, so its answer equals its batch
score; a new or changed flight is added to D's timetable first (it counts in D's congestion and
rotation features). Every feature reads only rows known at the prediction time (``as_of``), the
same availability rules as batch (the time guard holds for this path too: it is the same code).

- ``day_ahead`` (the default) predicts at 22:00 New York time the evening before D.
- ``nowcast_2h`` predicts two hours before each departure, from the day's operations known then;
  the lakehouse holds those once D is delivered, so a nowcast is served for delivered days only.

State is re-read only when it changes: the registry's audit trail (a promotion or rollback is an
appended line; re-verified before use) and the catalog's current version (a publish swaps the
file) are checked by ``stat`` on every request, ~2 µs each. A day's inputs and features are
cached per catalog version (LRU of ``DAYS_CACHED`` days).
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl

from resources.catalog.publish import connect_catalog, refresh_catalog
from resources.core.clock import local_to_utc
from resources.core.pseudonym import load_key, pseudonymize
from resources.core.settings import Settings
from resources.ml.features.availability import DAY_AHEAD, HORIZONS, NOWCAST, NOWCAST_LEAD, cutoff_of
from resources.ml.features.point_in_time import FeatureInputs, build_features, conform, target_rows
from resources.ml.lake import feature_input_queries
from resources.ml.model.training import input_columns, predict
from resources.ml.registry import lifecycle
from resources.ml.registry.storage import Registry, registry_dir
from resources.serving.requests import PredictionTime, RequestError, ScheduledFlight

DAYS_CACHED = 32  # ~1 MB of features and ~10 MB of inputs a day on the year: a month stays warm


class ServiceUnavailable(RuntimeError):
    """The registry or the catalog cannot be used (does not verify, or is missing): HTTP 503."""


def _stamp(path) -> tuple | None:
    try:
        if not isinstance(path, Path):  # on object storage: the object's ETag names its content
            info = path.fs.info(str(path))
            return info.get("ETag"), str(info.get("LastModified")), info.get("size")
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


# --- the model ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Model:
    version: str
    pipeline: object
    record: dict
    approval: dict | None
    stamp: tuple | None

    def describe(self) -> dict:
        r = self.record
        return {
            "model_version": self.version,
            "status": lifecycle.PRODUCTION,
            "family": r.get("family"),
            "registered_at": r.get("registered_at"),
            "artifact_sha256": r.get("artifact_sha256"),
            "holdout": {"validation": r.get("validation"), "test": r.get("test"), "split": r.get("split")},
            "approval": self.approval,
        }


def load_model(settings: Settings, horizon: str = DAY_AHEAD) -> Model | None:
    """The verified production model of ``horizon``: the audit chain, the record's MAC and the
    artifact's sha256 are all checked (ServiceUnavailable names what failed). None for a horizon
    other than day-ahead that has no production model yet (its requests are refused by name)."""
    registry = Registry(settings)
    stamp = _stamp(registry_dir(settings) / "audit.jsonl")
    try:
        events = registry.audit()
        version = lifecycle.production_version(lifecycle.statuses(lifecycle.for_horizon(events, horizon)))
        if version is None and horizon != DAY_AHEAD:
            return None
        if version is None:
            raise ServiceUnavailable("no production model: train one and promote it (make promote) first")
        pipeline, record = registry.load(version), registry.record(version)
    except ServiceUnavailable:
        raise
    except Exception as exc:  # RegistryTampered, ArtifactIntegrityError, a missing or unreadable file
        raise ServiceUnavailable(f"the model registry does not verify: {type(exc).__name__}: {exc}") from exc
    approval = next(
        (
            {k: e.get(k) for k in ("event", "at", "actor", "reason", "previous_version")}
            for e in reversed(events)
            if e["event"] in ("promoted", "rolled_back") and e.get("version") == version
        ),
        None,
    )
    return Model(version, pipeline, record, approval, stamp)


# --- the lakehouse state ----------------------------------------------------------------------
@dataclass
class Day:
    inputs: FeatureInputs
    # D's flights as predicted: its published timetable (features.target_rows), the rows request
    # flights are compared with and take the schema of.
    targets: pl.DataFrame
    # Features of D's scheduled flights per horizon, by flight_id (a horizon's on first use).
    features: dict[str, pl.DataFrame] = field(default_factory=dict)
    # p_late of every scheduled flight by (horizon, model version): one predict call for the day
    # (~50 ms for ~900 flights) instead of one per request; a single-flight call of the blend costs
    # ~28 ms here, nearly all of it scikit-learn's per-call overhead (pandas column selection, checks).
    scores: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)

    def features_of(self, day: date, horizon: str) -> pl.DataFrame:
        if horizon not in self.features:
            self.features[horizon] = build_features(self.inputs, day, day + timedelta(days=1), horizon)
        return self.features[horizon]


@dataclass
class Catalog:
    version: str
    stamp: tuple | None
    first_day: date
    last_day: date
    origins: frozenset[str]
    carriers: frozenset[str]
    time_zones: dict[str, str | None]  # every airport a flight may go to (None: no zone delivered)
    coordinates: dict[str, tuple[float, float]]
    distances: dict[tuple[str, str], int]
    days: OrderedDict = field(default_factory=OrderedDict)


def _frame(con, sql: str, params: list | None = None) -> pl.DataFrame:
    # execute(), not sql(): a relation built with parameters does not push its filters into the
    # scan (30x slower on a month of rows, resources/ml/lake.py).
    return pl.from_arrow(con.execute(sql, params or None).fetch_arrow_table())


def load_catalog(settings: Settings) -> Catalog:
    stamp = _stamp(settings.catalog_path)
    if stamp is None:
        raise ServiceUnavailable(f"no published catalog at {settings.catalog_path}: run `make run` first")
    with connect_catalog(settings) as con:
        version = con.execute("select version from catalog.version").fetchall()[0][0]
        first, last = con.execute("select min(flight_date), max(flight_date) from curated.fct_flights").fetchall()[0]
        routes = _frame(
            con,
            "select origin, dest, max(distance) as distance from curated.fct_flights "
            "where distance is not null group by all",
        )
        airports = _frame(con, "select faa, time_zone, latitude, longitude from curated.dim_airports")
        carriers = _frame(con, "select carrier from curated.dim_carriers")
    if first is None:
        raise ServiceUnavailable("the published catalog holds no flights yet")
    # Destinations without an airport record (BQN, PSE, SJU, STT) are still served: batch scores
    # them too, with their arrival-zone features null.
    zones = {d: None for d in routes["dest"]} | dict(zip(airports["faa"], airports["time_zone"]))
    return Catalog(
        version=version,
        stamp=stamp,
        first_day=first,
        last_day=last,
        origins=frozenset(routes["origin"]),
        carriers=frozenset(carriers["carrier"]),
        time_zones=zones,
        coordinates={
            f: (la, lo)
            for f, la, lo in airports.select("faa", "latitude", "longitude").iter_rows()
            if la is not None and lo is not None
        },
        distances={(o, d): int(x) for o, d, x in routes.iter_rows()},
    )


def load_day(settings: Settings, day: date) -> Day:
    with connect_catalog(settings) as con:
        flights, weather, planes, dates, schedules = (
            _frame(con, sql, params) for sql, params in feature_input_queries(day, day + timedelta(days=1))
        )
    inputs = FeatureInputs(flights=flights, weather=weather, planes=planes, dates=dates, schedules=schedules)
    state = Day(inputs, target_rows(inputs, day, day + timedelta(days=1)))
    state.features_of(day, DAY_AHEAD)
    return state


# --- request flights as curated rows ----------------------------------------------------------
def great_circle_miles(a: tuple[float, float], b: tuple[float, float]) -> int:
    """Haversine distance, whole statute miles (the deliveries' unit), for a route never flown."""
    (la1, lo1), (la2, lo2) = (tuple(map(math.radians, p)) for p in (a, b))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return round(2 * 3958.8 * math.asin(math.sqrt(h)))


def _local(day: date, hhmm: int) -> datetime:
    return datetime(day.year, day.month, day.day) + timedelta(minutes=hhmm // 100 * 60 + hhmm % 100)


def check_flight(f: ScheduledFlight, where: str, cat: Catalog) -> None:
    """What the lakehouse can serve: airports and carriers it knows, dates it has the state for."""
    if f.origin not in cat.origins:
        raise RequestError(
            f"{where}.origin {f.origin!r} is not an airport the deliveries depart from "
            f"({', '.join(sorted(cat.origins))})",
            f"{where}.origin",
        )
    if f.dest not in cat.time_zones:
        raise RequestError(f"{where}.dest {f.dest!r} is not a known airport", f"{where}.dest")
    if f.carrier not in cat.carriers:
        raise RequestError(f"{where}.carrier {f.carrier!r} is not a known airline", f"{where}.carrier")
    if (f.origin, f.dest) not in cat.distances and not {f.origin, f.dest} <= set(cat.coordinates):
        raise RequestError(f"{where}.dest: no distance is known for {f.origin}-{f.dest}", f"{where}.dest")
    if not cat.first_day <= f.flight_date <= cat.last_day + timedelta(days=1):
        raise RequestError(
            f"{where}.date {f.flight_date} is outside the lakehouse's state: it holds flights of "
            f"{cat.first_day}..{cat.last_day}, and a flight is scored from the days before its date "
            f"(at most the day after the last delivered one)",
            f"{where}.date",
            status=422,
        )


def request_rows(
    flights: list[ScheduledFlight], cat: Catalog, schema: pl.Schema, key: bytes, scheduled: pl.DataFrame
) -> pl.DataFrame:
    """The request's flights as rows of the day's targets (schedule columns only; everything
    recorded at or after departure null). Timestamps follow stg_nycflights__flights.sql and
    int_flights__timestamped.sql. A flight the timetable holds keeps its scheduled aircraft: a tail
    number sent for it is not used, so an answer never confirms or denies a caller's guess of
    which aircraft flew (the deliveries hold only its pseudonym)."""
    known_tail = dict(zip(scheduled["flight_id"], scheduled["tailnum_key"]))
    rows = []
    for f in flights:
        dep = _local(f.flight_date, f.sched_dep_time)
        arr = _local(f.flight_date, f.sched_arr_time) + timedelta(days=f.sched_arr_time < f.sched_dep_time)
        rows.append(
            {
                "flight_id": f.flight_id,
                "flight_date": f.flight_date,
                "carrier": f.carrier,
                "flight_number": f.flight_number,
                "tailnum_key": known_tail.get(f.flight_id)
                if f.flight_id in known_tail
                else pseudonymize(f.tailnum, key)
                if f.tailnum
                else None,
                "origin": f.origin,
                "dest": f.dest,
                "scheduled_departure_local": dep,
                "scheduled_departure_utc": local_to_utc(dep, cat.time_zones.get(f.origin)),
                "scheduled_arrival_local": arr,
                "scheduled_arrival_utc": local_to_utc(arr, cat.time_zones.get(f.dest)),
                "distance": cat.distances.get((f.origin, f.dest))
                or great_circle_miles(cat.coordinates[f.origin], cat.coordinates[f.dest]),
                "batch_id": "request",
            }
        )
    given = pl.DataFrame(
        rows,
        schema_overrides={
            "scheduled_departure_utc": pl.Datetime("us", "UTC"),
            "scheduled_arrival_utc": pl.Datetime("us", "UTC"),
        },
    )
    return conform(given, schema)


SCHEDULE = (
    "flight_id",
    "carrier",
    "flight_number",
    "tailnum_key",
    "origin",
    "dest",
    "scheduled_departure_local",
    "scheduled_departure_utc",
    "scheduled_arrival_local",
    "scheduled_arrival_utc",
    "distance",
)


def features_for_day(
    day_state: Day, day: date, rows: pl.DataFrame, horizon: str = DAY_AHEAD
) -> tuple[pl.DataFrame, list[bool]]:
    """Features of ``rows`` (one day's request flights, as target rows) at the horizon's
    prediction time, in their order, and whether each is the scheduled flight unchanged."""
    same = rows.select(SCHEDULE).join(
        day_state.targets.select(SCHEDULE), on=list(SCHEDULE), how="semi", nulls_equal=True
    )["flight_id"]
    unchanged = rows["flight_id"].is_in(same.implode()).to_list()
    order = rows.select("flight_id").with_row_index("_order")
    if all(unchanged):
        found = day_state.features_of(day, horizon)
    else:
        # A new or changed flight joins (or replaces its row in) the day's timetable; the delivered
        # history stays as it was delivered.
        targets = pl.concat([day_state.targets.join(rows.select("flight_id"), on="flight_id", how="anti"), rows])
        found = build_features(replace(day_state.inputs, schedules=targets), day, day + timedelta(days=1), horizon)
    return order.join(found, on="flight_id", how="left").sort("_order").drop("_order"), unchanged


# --- the service ------------------------------------------------------------------------------
class ScoringService:
    """Thread-safe: requests run in a thread pool; state swaps happen under one lock."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._key = load_key(settings)
        self.models: dict[str, Model | None] = {}
        self.catalog: Catalog | None = None
        self.problem: str | None = None
        self._audit_stamp: tuple | None = None
        self.refresh(strict=True)

    @property
    def model(self) -> Model | None:
        """The day-ahead production model (the one the service cannot run without)."""
        return self.models.get(DAY_AHEAD)

    def refresh(self, strict: bool = False) -> None:
        """Reload what changed. ``strict`` (start-up) raises; later a failure is kept in
        ``problem`` and every request answers 503 until the registry verifies again."""
        audit = _stamp(registry_dir(self.settings) / "audit.jsonl")
        catalog = _stamp(refresh_catalog(self.settings))  # on an object-storage root: the pointer's version
        if (
            self.models
            and self.catalog
            and self.problem is None
            and audit == self._audit_stamp
            and catalog == self.catalog.stamp
        ):
            return
        with self._lock:
            try:
                if not self.models or self.problem or audit != self._audit_stamp:
                    self.models = {h: load_model(self.settings, h) for h in HORIZONS}
                    self._audit_stamp = audit
                if self.catalog is None or catalog != self.catalog.stamp:
                    self.catalog = load_catalog(self.settings)
                self.problem = None
            except ServiceUnavailable as exc:
                if strict:
                    raise
                self.problem = str(exc)

    def _usable(self) -> tuple[dict[str, Model | None], Catalog]:
        self.refresh()
        if self.problem:
            raise ServiceUnavailable(self.problem)
        assert self.models.get(DAY_AHEAD) and self.catalog
        return self.models, self.catalog

    def describe_model(self) -> dict:
        models, cat = self._usable()
        return models[DAY_AHEAD].describe() | {
            "catalog_version": cat.version,
            "horizons": {h: (m.describe() if m else None) for h, m in models.items()},
        }

    def health(self) -> dict:
        models, cat = self._usable()
        return {
            "status": "ok",
            "model_version": models[DAY_AHEAD].version,
            "catalog_version": cat.version,
            "models": {h: (m.version if m else None) for h, m in models.items()},
            "days": f"{cat.first_day}..{cat.last_day}",
        }

    def _day(self, cat: Catalog, day: date) -> Day:
        with self._lock:
            if day in cat.days:
                cat.days.move_to_end(day)
                return cat.days[day]
            state = load_day(self.settings, day)
            cat.days[day] = state
            while len(cat.days) > DAYS_CACHED:
                cat.days.popitem(last=False)
            return state

    def _delivered_scores(self, state: Day, day: date, model: Model, horizon: str) -> dict[str, float]:
        with self._lock:
            if (horizon, model.version) not in state.scores:
                for key in [k for k in state.scores if k[0] == horizon]:  # only the current model's are kept
                    del state.scores[key]
                features = state.features_of(day, horizon)
                state.scores[(horizon, model.version)] = dict(
                    zip(features["flight_id"], predict(model.pipeline, features).tolist())
                )
            return state.scores[(horizon, model.version)]

    def _model_for(self, models: dict[str, Model | None], horizon: str) -> Model:
        model = models.get(horizon)
        if model is None:
            raise RequestError(
                f"no production model serves the {horizon} horizon yet: train one and promote it "
                f"(make promote HORIZON={horizon})",
                "horizon",
                status=422,
            )
        return model

    def _check_time(self, f: ScheduledFlight, where: str, cat: Catalog, when: PredictionTime) -> None:
        """A prediction exists from its horizon's prediction time on; a nowcast needs the day's
        operations up to then, which the lakehouse holds once the day is delivered."""
        if when.horizon == NOWCAST and f.flight_date > cat.last_day:
            raise RequestError(
                f"{where}: a nowcast of {f.flight_date} reads the day's departures and outcomes known two hours "
                f"before the flight, and the lakehouse holds delivered operations through {cat.last_day} only",
                f"{where}.date",
                status=422,
            )
        if when.as_of is None:
            return
        if when.horizon == DAY_AHEAD:
            made, rule = cutoff_of(f.flight_date), "22:00 New York time the evening before"
        else:
            dep = local_to_utc(_local(f.flight_date, f.sched_dep_time), cat.time_zones.get(f.origin))
            made, rule = dep - NOWCAST_LEAD, "two hours before its scheduled departure"
        if made is not None and when.as_of < made:
            raise RequestError(
                f"{where}: its {when.horizon} prediction is made at {made.isoformat()} ({rule}); as_of "
                f"{when.as_of.isoformat()} is earlier, when it did not exist",
                "as_of",
                status=422,
            )

    def score(self, flights: list[ScheduledFlight], when: PredictionTime = PredictionTime()) -> dict:  # noqa: B008 (frozen)
        models, cat = self._usable()
        model = self._model_for(models, when.horizon)
        for i, f in enumerate(flights):
            check_flight(f, f"flights[{i}]", cat)
            self._check_time(f, f"flights[{i}]", cat, when)
        results: list[dict | None] = [None] * len(flights)
        by_day: dict[date, list[int]] = {}
        for i, f in enumerate(flights):
            by_day.setdefault(f.flight_date, []).append(i)
        names = input_columns(model.pipeline)
        for day, positions in sorted(by_day.items()):
            state = self._day(cat, day)
            rows = request_rows([flights[i] for i in positions], cat, state.targets.schema, self._key, state.targets)
            features, unchanged = features_for_day(state, day, rows, when.horizon)
            if all(unchanged):
                scores = self._delivered_scores(state, day, model, when.horizon)
                p = [scores[fid] for fid in rows["flight_id"]]
            else:
                p = predict(model.pipeline, features)
            # JSON has no NaN (Starlette refuses it with a 500): a NaN feature is sent as null.
            values = features.select(names).fill_nan(None).to_dicts()
            made = features["as_of"].dt.convert_time_zone("UTC").to_list()
            for k, i in enumerate(positions):
                results[i] = {
                    "flight_id": flights[i].flight_id,
                    "p_late": float(p[k]),
                    "model_version": model.version,
                    "horizon": when.horizon,
                    "as_of": made[k].isoformat(),
                    "schedule": "delivered" if unchanged[k] else "request",
                    "features": values[k],
                }
        return {"model_version": model.version, "catalog_version": cat.version, "scores": results}
