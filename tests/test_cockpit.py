"""The UI as the engineer's cockpit: descriptions, column schemas, each partition's own figures."""

from __future__ import annotations

import dagster as dg
import polars as pl

from assets.definitions import build_definitions
from assets.jobs import DAILY_JOB, REFERENCE_JOB

# Not tables: model artifacts (their records are the ml.model_registry table) and HTML reports.
NOT_TABLES = {
    "ml/model_candidate",
    "ml/model_preproduction",
    "ml/model_candidate_nowcast_2h",
    "ml/model_preproduction_nowcast_2h",
    "ml/production_model",
    "monitoring/drift_report",
    "monitoring/quality_report",
    "warehouse/maintenance",
}  # its metadata is what maintenance did, not a table


def test_every_asset_check_and_job_says_what_it_is_and_tables_carry_their_columns():
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert (node.description or "").strip(), f"{key.to_user_string()} has no description"
        if key.to_user_string() not in NOT_TABLES:
            schema = node.metadata.get("dagster/column_schema")
            assert schema is not None and schema.columns, f"{key.to_user_string()} has no column schema"
    for spec in graph.asset_check_keys:
        check = graph.get_check_spec(spec)
        assert (check.description or "").strip(), (
            f"check {spec.name} on {spec.asset_key.to_user_string()} has no description"
        )
        if "dbt" in node.kinds or key.path[0] in ("staging", "intermediate", "curated", "snapshots"):
            url = node.metadata.get("dbt_docs")
            assert url is not None and url.url.endswith(f".{key.path[-1]}"), key  # its dbt docs page
    for job in defs.jobs:
        assert (job.description or "").strip(), f"job {job.name} has no description"


def _latest(lakehouse, key: list[str], day: str) -> dict:
    record = lakehouse.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[day]), limit=1
    ).records[0]
    return record.asset_materialization.metadata


def test_each_raw_and_dbt_day_of_a_single_run_backfill_carries_its_own_row_count(lakehouse):
    assert lakehouse.run(REFERENCE_JOB).success
    assert lakehouse.run(DAILY_JOB, "2013-01-01", "2013-01-03").success
    raw = pl.read_parquet(lakehouse.settings.raw_dir / "flights" / "**" / "*.parquet", hive_partitioning=True)
    per_day = {str(d): n for d, n in raw.group_by("delivery_date").len().iter_rows()}
    assert len(per_day) == 3 and len(set(per_day.values())) > 1
    for day, expected in per_day.items():
        record = lakehouse.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(["raw", "flights"]), asset_partitions=[day]), limit=1
        ).records[0]
        meta = record.asset_materialization.metadata
        assert meta["dagster/row_count"].value == expected, day  # not the run's 3-day total
        # No event of the day, the run's own included, shows another row count (finding 13).
        for key in (["raw", "flights"], ["curated", "fct_flights"]):
            every = lakehouse.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[day]), limit=10
            ).records
            assert len(every) == 2 and {
                r.asset_materialization.metadata["dagster/row_count"].value
                for r in every
                if "dagster/row_count" in r.asset_materialization.metadata
            } == {expected}
        assert meta["delivered_rows"].value == expected + meta["quarantined_rows"].value
        for key in (["curated", "fct_flights"], ["staging", "stg_nycflights__flights"]):
            latest = _latest(lakehouse, key, day)
            assert latest["dagster/row_count"].value == expected, (key, day)
            # The UI's Columns table reads the latest event: it carries the types (finding 13).
            columns = latest["dagster/column_schema"].value.columns
            assert len(columns) > 5 and all(c.type for c in columns), (key, day)
    weather = {
        d: _latest(lakehouse, ["staging", "stg_nycflights__weather"], d)["dagster/row_count"].value for d in per_day
    }
    raw_weather = pl.read_parquet(lakehouse.settings.raw_dir / "weather" / "**" / "*.parquet", hive_partitioning=True)
    assert weather == {str(d): n for d, n in raw_weather.group_by("delivery_date").len().iter_rows()}  # 67, 72, 72


def test_report_locations_are_links_the_ui_opens_and_other_paths_stay_paths(tmp_path, monkeypatch):
    from assets.common import location
    from resources.core.settings import Settings

    settings = Settings(root=tmp_path / "lakehouse")
    report = location(settings, settings.reports_dir / "drift" / "2013-02.html", "report")
    assert report["report"].path.endswith("2013-02.html")
    assert report["report_link"].url == "http://127.0.0.1:3001/drift/2013-02.html"
    monkeypatch.setenv("LAKEHOUSE_REPORTS_URL", "http://reports.internal:8080/")
    assert (
        location(settings, settings.reports_dir / "index.html")["path_link"].url
        == "http://reports.internal:8080/index.html"
    )
    assert set(location(settings, settings.root / "raw" / "flights")) == {"path"}  # data is not served
