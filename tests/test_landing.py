"""Deliveries as they land: the landing sensor requests exactly the day whose file is new or changed."""

from __future__ import annotations

import os
import shutil

import dagster as dg
import pytest
import yaml

from assets.definitions import build_definitions
from resources.core.lakehouse_resource import LakehouseResource
from resources.raw.sources import DEFAULT_SOURCES_FILE, load_sources

pytestmark = pytest.mark.fast

HEADER = "year,month,day,dep_time,sched_dep_time,dep_delay,arr_time,sched_arr_time,arr_delay,carrier,flight,tailnum,origin,dest,air_time,distance,hour,minute,time_hour\n"
ROW = "2013,1,{d},517,515,2,830,819,11,UA,1545,N14228,EWR,IAH,227,1400,5,15,2013-01-0{d} 10:00:00\n"


def _evaluate(sensor, instance, cursor):
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    requests = list(sensor(context) or [])
    return [r for r in requests if isinstance(r, dg.RunRequest)], context.cursor


def test_a_landed_file_requests_its_day_once_and_a_redelivery_once_more(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    landing.mkdir()
    doc = yaml.safe_load(DEFAULT_SOURCES_FILE.read_text())
    doc["sources"]["flights"]["location"] = str(landing / "flights_{date}.csv")
    (tmp_path / "sources.yml").write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("LAKEHOUSE_SOURCES", str(tmp_path / "sources.yml"))
    assert load_sources()["flights"].one_file_per_day
    defs = build_definitions(LakehouseResource(root=str(tmp_path / "lakehouse")))
    sensor = defs.resolve_sensor_def("landing_flights")
    assert "landing_weather" not in {s.name for s in defs.sensors}  # one file for the year: no day to request
    instance = dg.DagsterInstance.ephemeral()

    requests, cursor = _evaluate(sensor, instance, None)
    assert requests == []
    (landing / "flights_2013-01-05.csv").write_text(HEADER + ROW.format(d=5))
    (landing / "flights_notes.txt").write_text("not a delivery")
    (landing / "flights_2015-01-01.csv").write_text(HEADER)  # outside the declared partitions
    requests, cursor = _evaluate(sensor, instance, cursor)
    assert [r.partition_key for r in requests] == ["2013-01-05"]
    assert requests[0].asset_selection == [dg.AssetKey(["raw", "flights"])]
    assert requests[0].tags["lakehouse/redelivery"] == "false"

    # Unchanged, or only touched: nothing.
    requests, cursor = _evaluate(sensor, instance, cursor)
    assert requests == []
    os.utime(landing / "flights_2013-01-05.csv", ns=(1, 10**18))
    requests, cursor = _evaluate(sensor, instance, cursor)
    assert requests == []

    # A re-delivery with other content: requested once, marked as such.
    (landing / "flights_2013-01-05.csv").write_text(HEADER + ROW.format(d=5) + ROW.format(d=5).replace("1545", "1546"))
    requests, cursor = _evaluate(sensor, instance, cursor)
    assert [(r.partition_key, r.tags["lakehouse/redelivery"]) for r in requests] == [("2013-01-05", "true")]
    requests, cursor = _evaluate(sensor, instance, cursor)
    assert requests == []

    # A second day lands beside it: only that day.
    shutil.copy(landing / "flights_2013-01-05.csv", landing / "flights_2013-01-06.csv")
    requests, _ = _evaluate(sensor, instance, cursor)
    assert [r.partition_key for r in requests] == ["2013-01-06"]
