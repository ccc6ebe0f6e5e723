"""`make run` is asset backfills of the graph, cut at the approval gate: no asset list anywhere."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from assets.bootstrap import backfill_all, in_process_workspace, split_at_gate, synchronous_instance
from assets.definitions import build_definitions
from assets.ml.keys import CANDIDATE_KEY, FEATURES_KEY, PRODUCTION_KEY, SCORES_KEY
from resources.core.settings import DBT_PROJECT_DIR, REPO_ROOT, Settings
from resources.ml.lake import feature_days
from resources.warehouse.lock import open_warehouse
from resources.warehouse.selection import tests_on_unbuilt_daily_models as unbuilt_tests
from tests.conftest import three_day_home


def test_the_gate_splits_the_whole_graph_and_a_new_asset_needs_no_edit():
    graph = build_definitions().resolve_asset_graph()
    before, after = split_at_gate(graph)
    assert PRODUCTION_KEY not in before + after
    assert set(before) | set(after) | {PRODUCTION_KEY} == set(graph.get_all_asset_keys())
    assert FEATURES_KEY in before and CANDIDATE_KEY in before and SCORES_KEY in after
    assert dg.AssetKey(["catalog", "analytics"]) in after  # it reads the scores
    # A new asset downstream of the scores lands after the gate with no edit to any list.
    extra = dg.asset(key=["team", "new_table"], deps=[SCORES_KEY])(lambda: None)
    defs = build_definitions()
    graph2 = dg.Definitions.merge(defs, dg.Definitions(assets=[extra])).resolve_asset_graph()
    assert dg.AssetKey(["team", "new_table"]) in split_at_gate(graph2)[1]


@pytest.mark.fast
def test_a_staging_only_build_leaves_out_tests_on_the_unbuilt_fct_flights():
    manifest = json.loads((DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    staging = ["stg_nycflights__flights", "stg_nycflights__weather"]
    assert "assert_no_flight_lost_raw_to_curated" in unbuilt_tests(manifest, staging)
    rest = ["int_flights__timestamped", "fct_flights", "carrier_daily_performance"]
    assert unbuilt_tests(manifest, rest) == []  # staging is upstream: built before
    assert unbuilt_tests(manifest, staging + rest) == []


def test_one_backfill_builds_three_days_through_features_recorded_in_the_instance(tmp_path, monkeypatch):
    """The same machinery as `make run`, on 3 declared days and the assets up to the features."""
    home = three_day_home(tmp_path, monkeypatch, REPO_ROOT / "dagster_home" / "dagster.yaml")
    instance = synchronous_instance(str(home))
    with in_process_workspace(instance) as context:
        before, _ = split_at_gate(context.create_request_context().asset_graph)
        keys = [k for k in before if k.path[0] != "ml"] + [FEATURES_KEY]
        assert backfill_all(context, keys, "test", log=lambda *_: None)
    backfill = instance.get_backfills()[0]
    assert backfill.title == "test" and backfill.is_asset_backfill
    runs = instance.get_runs()
    assert len(runs) >= 3 and all(r.is_success for r in runs)
    # Dagster planned the runs: the daily chain as single runs over the whole range.
    ranged = [r for r in runs if r.tags.get("dagster/asset_partition_range_start") == "2013-01-01"]
    assert ranged and all(r.tags["dagster/asset_partition_range_end"] == "2013-01-03" for r in ranged)
    with open_warehouse(Settings(root=tmp_path / "lakehouse", env="dev")) as con:
        days = con.execute("select count(distinct flight_date) from curated.fct_flights").fetchone()[0]
    assert days == 3
    assert len(feature_days(Settings(root=tmp_path / "lakehouse", env="dev"))) == 3
    status = instance.get_latest_materialization_event(FEATURES_KEY)
    assert status is not None
