"""A second team's code location: it consumes the platform's products by asset key only, under a
written contract; lineage crosses the two locations; its table reaches the analyst catalog."""

from __future__ import annotations

import shutil
import sys

import dagster as dg
import pytest

from assets.definitions import build_definitions
from assets.jobs import PUBLISH_JOB
from resources.core.dagster_private import WorkspaceFileTarget, WorkspaceProcessContext
from resources.core.settings import REPO_ROOT
from teams.airport_ops.definitions import build as build_team
from teams.airport_ops.logic import (
    ContractBroken,
    build_expected_late_departures,
    contract_violations,
    load_contract,
    open_catalog,
)
from tests.conftest import make_lakehouse

TEAM_KEY = dg.AssetKey(["airport_ops", "expected_late_departures"])


def declared_columns() -> dict[str, dict[str, str]]:
    """What the platform declares for every asset (dbt yml, score schema...): "schema.table" -> columns."""
    graph = build_definitions().resolve_asset_graph()
    out = {}
    for key in graph.get_all_asset_keys():
        schema = graph.get(key).metadata.get("dagster/column_schema")
        if schema is not None and len(key.path) == 2:
            out[".".join(key.path)] = {c.name: "" for c in schema.columns}
    return out


@pytest.mark.fast
def test_the_platform_still_declares_every_column_the_team_consumes():
    contract = load_contract()
    declared = declared_columns()
    assert contract_violations(contract, declared) == []
    # Dropping a consumed column is caught, naming table, column and owning team.
    broken = {
        **declared,
        "curated.fct_flights": {c: t for c, t in declared["curated.fct_flights"].items() if c != "origin"},
    }
    assert contract_violations(contract, broken) == [
        "curated.fct_flights.origin: column missing (owner team:data-engineering)"
    ]


@pytest.mark.fast
def test_the_team_imports_nothing_from_the_platform():
    for name in ("teams.airport_ops.definitions", "teams.airport_ops.logic"):
        source = sys.modules[name].__file__
        text = open(source).read()
        assert "from assets" not in text and "from resources" not in text and "import assets" not in text, source


def test_the_teams_table_is_built_from_the_catalog_and_published_under_its_schema(ml_lakehouse, tmp_path, monkeypatch):
    src = ml_lakehouse.settings.root
    root = tmp_path / "lakehouse"
    shutil.copytree(src, root)
    shutil.copytree(src.parent / f"{src.name}.secrets", tmp_path / "lakehouse.secrets")
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(root))
    team = build_team()
    result = dg.materialize(list(team.assets), instance=dg.DagsterInstance.ephemeral())
    assert result.success
    rows = result.get_asset_materialization_events()[0].materialization.metadata["dagster/row_count"].value
    assert rows > 0
    with open_catalog(root) as con:
        departed = con.execute(
            "select count(*) from curated.fct_flights f join ml.flight_delay_scores "
            "using (flight_id) where not f.cancelled"
        ).fetchone()[0]
    lh = make_lakehouse(root)
    assert lh.run(PUBLISH_JOB).success
    with open_catalog(root) as con:
        flights, n = con.execute("select sum(flights), count(*) from airport_ops.expected_late_departures").fetchone()
        listed = con.execute("select row_count from catalog.tables where schema_name = 'airport_ops'").fetchone()[0]
    assert flights == departed and n == rows == listed

    # A broken promise fails the team's build by name, and the published table is left as it was.
    product = root / "products" / "airport_ops" / "expected_late_departures.parquet"
    before = product.read_bytes()
    contract = load_contract()
    contract["products"]["ml.flight_delay_scores"]["columns"]["p_on_time"] = {"type": "double", "meaning": "x"}
    with pytest.raises(
        ContractBroken, match=r"ml\.flight_delay_scores\.p_on_time: column missing \(owner team:data-science\)"
    ):
        build_expected_late_departures(root, contract)
    assert product.read_bytes() == before


def test_global_lineage_crosses_the_two_code_locations(tmp_path):
    """workspace.yaml as `make dev` loads it: each location in its own code server process."""
    with (
        dg.instance_for_test(temp_dir=str(tmp_path)) as instance,
        WorkspaceProcessContext(instance, WorkspaceFileTarget([str(REPO_ROOT / "workspace.yaml")])) as context,
    ):
        request = context.create_request_context()
        entries = request.get_code_location_entries()
        assert {"lakehouse", "airport_ops"} <= set(entries)
        assert all(e.load_error is None for e in entries.values()), [e.load_error for e in entries.values()]
        graph = request.asset_graph
        team = graph.get(TEAM_KEY)
        assert {
            dg.AssetKey(["curated", "fct_flights"]),
            dg.AssetKey(["ml", "flight_delay_scores"]),
            dg.AssetKey(["catalog", "analytics"]),
        } <= set(team.parent_keys)
        fct = graph.get(dg.AssetKey(["curated", "fct_flights"]))
        assert fct.is_materializable and TEAM_KEY in fct.child_keys  # the platform's asset, edge to the team's
