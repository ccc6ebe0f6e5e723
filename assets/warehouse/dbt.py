"""dbt models, seeds and snapshots as Dagster assets; dbt tests as asset checks.

Two asset definitions over one dbt project: the daily models (tag ``daily``) are partitioned like
the raw flights and receive the partition window as dbt vars; everything else (reference data,
snapshots, dimensions) is unpartitioned.
"""

import random
import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets
from dagster_dbt.asset_utils import get_manifest_and_translator_from_dbt_assets

from assets.automation import downstream
from assets.common import DATA_ENGINEERING, SINGLE_RUN, WAREHOUSE_POOL, per_partition, run_row_count
from resources.core.config import LakehouseEnvironment
from resources.core.file_lock import exclusive
from resources.core.lakehouse_resource import LakehouseResource
from resources.core.settings import DBT_PROJECT_DIR, Settings, environment
from resources.warehouse.conflicts import failure_summary, only_commit_conflicts
from resources.warehouse.lock import open_warehouse, warehouse_lock
from resources.warehouse.partition_counts import rows_per_day
from resources.warehouse.selection import tests_on_unbuilt_daily_models

DAILY_SELECT = "tag:daily"

# dbt folder -> Dagster group (the zone an asset belongs to)
_GROUPS = {"staging": "staging", "intermediate": "staging", "marts": "curated"}


class LakehouseDbtTranslator(DagsterDbtTranslator):
    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] in ("snapshot", "seed"):
            group = "curated"
        else:
            group = _GROUPS.get(props["fqn"][1] if len(props["fqn"]) > 2 else "", "curated")
        return spec.replace_attributes(
            group_name=group, owners=[DATA_ENGINEERING], automation_condition=downstream()
        ).merge_attributes(
            kinds={"duckdb"},
            # The model's page in dbt's documentation site (`make docs`, served by `make dev`).
            metadata={
                "dbt_docs": dg.MetadataValue.url(
                    f"{LakehouseEnvironment.from_environ().reports_url.rstrip('/')}/dbt-docs/index.html"
                    f"#!/{props['resource_type']}/{unique_id}"
                )
            },
        )


def check_description(test: Mapping[str, Any]) -> str:
    """The yml description of a dbt test, else one sentence built from its generic test and
    arguments, plus the severity: the UI otherwise says "No description provided" for all of them."""
    severity = str(test.get("config", {}).get("severity") or "error").lower()
    text = (test.get("description") or "").strip()
    if not text:
        meta = test.get("test_metadata") or {}
        kwargs = meta.get("kwargs") or {}
        column = kwargs.get("column_name", "")
        text = {
            "not_null": f"`{column}` is never null.",
            "unique": f"`{column}` is unique.",
            "accepted_values": f"`{column}` only takes the values {kwargs.get('values')}.",
            "relationships": f"Every `{column}` has a row in {str(kwargs.get('to', '')).replace('ref(', '').rstrip(')')}"
            f".{kwargs.get('field', '')}.",
        }.get(meta.get("name", ""), f"dbt test {test.get('name')}.")
        if meta.get("name") == "dbt_utils.unique_combination_of_columns" or "combination_of_columns" in kwargs:
            text = f"The combination of {kwargs.get('combination_of_columns')} is unique."
    return f"{text} (dbt test, severity {severity}: {'warns' if severity == 'warn' else 'fails the build'}.)"


class DescribedChecksTranslator(LakehouseDbtTranslator):
    def get_asset_check_spec(self, asset_spec, manifest, unique_id, project):
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None:
            return None
        return dg.AssetCheckSpec(
            name=spec.name,
            asset=spec.asset_key,
            description=check_description(manifest["nodes"][unique_id]),
            additional_deps=spec.additional_deps,
            metadata=spec.metadata,
            blocking=spec.blocking,
        )


TRANSLATOR = DescribedChecksTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


def manifest_is_current(project_dir: Path = DBT_PROJECT_DIR) -> bool:
    """Whether target/manifest.json is newer than every model, macro, seed and yml of the project
    (the rule `make manifest` follows)."""
    manifest = project_dir / "target" / "manifest.json"
    if not manifest.exists():
        return False
    built = manifest.stat().st_mtime
    places = [p for p in project_dir.iterdir() if p.name not in ("target", "logs", "dbt_packages")]
    sources = (
        f
        for place in places
        for f in ([place] if place.is_file() else place.rglob("*"))
        if f.suffix in (".sql", ".yml", ".yaml", ".csv")
    )
    return all(f.stat().st_mtime <= built for f in sources)


def dbt_project() -> DbtProject:
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    # Under `dagster dev` every run process loads the definitions, and prepare_if_dev() ran
    # `dbt parse` each time: 110-180 s of STARTING per run on a loaded machine. Parse only when
    # the project changed since the manifest was written (an edit during `make dev`), once.
    if not manifest_is_current():
        (DBT_PROJECT_DIR / "target").mkdir(exist_ok=True)
        with exclusive(DBT_PROJECT_DIR / "target" / ".parse.lock"):
            if not manifest_is_current():
                project.prepare_if_dev()
    return project


def _relation_metadata(
    settings: Settings, relations: dict[dg.AssetKey, tuple[str, str]], window: tuple[str, str] | None = None
) -> tuple[dict, dict]:
    """Row counts and schemas, read after dbt has exited (it holds the warehouse's write lock
    while it runs, so they cannot be fetched alongside it). For a daily window: the window's rows
    (not the whole table's) and each day's own count (resources/warehouse/partition_counts.py)."""
    out: dict = {}
    per_day: dict = {}
    with open_warehouse(settings, read_only=True) as wh:
        for key, (schema, name) in relations.items():
            cols = wh.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, name],
            ).fetchall()
            if not cols:
                continue
            out[key] = {
                "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(c, t) for c, t in cols]),
                "dagster/relation_identifier": f"{schema}.{name}",
            }
            days = rows_per_day(wh, schema, name, [c for c, _ in cols], *window) if window else None
            (kind,) = wh.execute(
                "select table_type from information_schema.tables where table_schema = ? and table_name = ?",
                [schema, name],
            ).fetchone()
            count = f'select count(*) from "{schema}"."{name}"'
            if days is None:
                out[key]["dagster/row_count"] = wh.execute(count).fetchone()[0]
                continue
            per_day[key] = days
            out[key] |= run_row_count(sum(days.values()), len(days))  # the window's rows
            # A view's count evaluates it over everything it reads (the whole raw zone, time zones
            # for every flight): 233 s of a one-day run at SF=100. A daily view reports its days.
            if kind != "VIEW":
                out[key]["table_rows"] = wh.execute(count).fetchone()[0]
    return out, per_day


CONFLICT_ATTEMPTS = 4


def _build_retrying_conflicts(context: dg.AssetExecutionContext, dbt: DbtCliResource, args: list[str]) -> list:
    """dbt's events, the build repeated whole when it failed only on DuckLake commit conflicts.

    A writer on another machine (a PostgreSQL catalog: the local lock does not reach it) may
    commit the same views or tables first. Every model is idempotent (views are replaced, daily
    models delete their window before inserting it), so building again after the other commit
    gives the same warehouse; only the last attempt's events are reported."""
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        invocation = dbt.cli(args, context=context, raise_on_error=False)
        events = list(invocation.stream())
        if invocation.is_successful():
            discard_target(invocation.target_path)
            return events
        results = _run_results(invocation)
        if attempt == CONFLICT_ATTEMPTS or not only_commit_conflicts(results):
            break
        discard_target(invocation.target_path)
        context.log.warning(
            f"dbt build attempt {attempt}: DuckLake commit conflict with another writer; building again"
        )
        time.sleep(random.uniform(1, 3) * attempt)
    raise dg.Failure(
        description=f"dbt build failed: {failure_summary(results)} (compiled SQL and dbt.log kept in "
        f"{invocation.target_path})"
    )


def discard_target(target: Path) -> None:
    """Remove an invocation's own target folder once its events and results are read: each dbt
    invocation gets one (compiled SQL, manifest, run results, about 3 MB), and kept they filled
    1.7 GB of dbt_project/target here. A failed build's folder stays, for its compiled SQL."""
    if target.parent.resolve() == (DBT_PROJECT_DIR / "target").resolve():  # never the shared manifest's folder
        shutil.rmtree(target, ignore_errors=True)


def _run_results(invocation) -> dict:
    try:
        return invocation.get_artifact("run_results.json")
    except FileNotFoundError:  # dbt stopped before running anything (e.g. the catalog unreachable)
        return {}


def run_dbt(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, settings: Settings, dbt_vars: dict[str, str] | None = None
) -> Iterator:
    # Unit tests prove the SQL's rules on fixtures: `make test-fast` runs them; a data build need not.
    args = ["build", "--exclude-resource-type", "unit_test"]
    # Asset keys are [schema, relation] (generate_schema_name keeps zone names as schemas).
    relations = {key: (key.path[-2], key.path[-1]) for key in context.selected_asset_keys}
    if dbt_vars:  # the daily models: a backfill may build them in two runs (selection.py)
        manifest, _, _ = get_manifest_and_translator_from_dbt_assets([context.assets_def])
        skip = tests_on_unbuilt_daily_models(manifest, [name for _, name in relations.values()])
        args += ["--exclude", *skip] if skip else []
    # profiles.yml and the source locations read the root; the window reaches the SQL as
    # environment, not --vars (macros/partition_window.sql).
    env = {
        **settings.dbt_env(),
        "LAKEHOUSE_WINDOW_START": dbt_vars["window_start"] if dbt_vars else "",
        "LAKEHOUSE_WINDOW_END": dbt_vars["window_end"] if dbt_vars else "",
    }
    with warehouse_lock(settings), environment(env):
        events = _build_retrying_conflicts(context, dbt, args)
        window = (dbt_vars["window_start"], dbt_vars["window_end"]) if dbt_vars else None
        extra, per_day = _relation_metadata(settings, relations, window)
    for event in events:
        if isinstance(event, dg.Output):
            key = context.assets_def.keys_by_output_name.get(event.output_name)
        else:
            key = getattr(event, "asset_key", None)
        if isinstance(event, (dg.Output, dg.AssetMaterialization)) and key in extra:
            event = event.with_metadata({**event.metadata, **extra[key]})
        yield event
    for key, days in per_day.items():  # after the outputs: each day's own count (common.per_partition)
        # The UI's Columns table shows the latest materialization's schema, which is a day's event.
        schema = {k: extra[key][k] for k in ("dagster/column_schema", "dagster/relation_identifier")}
        yield from per_partition(key, {d: {"dagster/row_count": n, **schema} for d, n in days.items()})


def build_dbt_assets(project: DbtProject, daily: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        exclude=DAILY_SELECT,
        dagster_dbt_translator=TRANSLATOR,
        name="dbt_reference",
        pool=WAREHOUSE_POOL,
    )
    def dbt_reference(context: dg.AssetExecutionContext, dbt: DbtCliResource, lakehouse: LakehouseResource):
        yield from run_dbt(context, dbt, lakehouse.settings())

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        select=DAILY_SELECT,
        dagster_dbt_translator=TRANSLATOR,
        partitions_def=daily,
        backfill_policy=SINGLE_RUN,
        name="dbt_daily",
        pool=WAREHOUSE_POOL,
    )
    def dbt_daily(context: dg.AssetExecutionContext, dbt: DbtCliResource, lakehouse: LakehouseResource):
        window = context.partition_time_window
        yield from run_dbt(
            context,
            dbt,
            lakehouse.settings(),
            {"window_start": window.start.date().isoformat(), "window_end": window.end.date().isoformat()},
        )

    return [dbt_reference, dbt_daily]
