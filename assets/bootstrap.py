"""`make run`: the whole asset graph on the declared deliveries, as Dagster asset backfills.

Nothing here lists assets or their order. The graph is cut at its one human gate, the
approval-gated ``ml/production_model``:

1. one asset backfill of everything not downstream of the gate (deliveries, dbt, features,
   candidate, pre-production, backtest), every partition;
2. the approval of each horizon's first production model, recorded like any other
   (``promote_model`` with the bootstrap approver); when a horizon's production model exists (a
   second `make run`, a restored backup) it is kept, and a newer candidate waits in
   pre-production for `make promote`;
3. one asset backfill of everything downstream of the gate (scores, monitoring, catalog).

Dagster's own backfill logic plans the runs from the graph (single-run policies: a year of daily
partitions is one run) and they are recorded in DAGSTER_HOME, so they show in the UI as two
backfills. A new asset is picked up with no edit here. The backfills are driven in this process
(Dagster's backfill iteration, runs executed synchronously) rather than by a daemon, so
`make run` needs no server and ends when the graph is built.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from assets.definitions import build_definitions
from assets.jobs import PROMOTE_JOB, PUBLISH_JOB
from assets.ml.model import PRODUCTION_KEY
from assets.ml.promote import refused
from resources.catalog.publish import connect_catalog
from resources.core.dagster_private import (
    BACKFILL_ID_TAG,
    IN_PROCESS_INSTANCE,
    BulkActionStatus,
    InProcessCodeLocationOrigin,
    InProcessWorkspaceLoadTarget,
    InstanceRef,
    LoadableTargetOrigin,
    PartitionBackfill,
    WorkspaceProcessContext,
    execute_backfill_iteration,
    make_new_backfill_id,
)
from resources.core.runs import process_tags, sweep_dead_runs
from resources.core.settings import REPO_ROOT, Settings
from resources.ml.features.availability import HORIZONS
from resources.ml.registry.storage import Registry

LOCATION = "lakehouse"  # the name workspace.yaml gives the code location: runs show under it in the UI
CODE_MODULE = "assets.definitions"
DONE = {
    BulkActionStatus.COMPLETED_SUCCESS,
    BulkActionStatus.COMPLETED,
    BulkActionStatus.COMPLETED_FAILED,
    BulkActionStatus.FAILED,
    BulkActionStatus.CANCELED,
}

BOOTSTRAP_APPROVAL = {
    "approver": "make-run (bootstrap)",
    "reason": "first production model on the embedded data, deployed by `make run`",
}


def split_at_gate(graph, gate: dg.AssetKey = PRODUCTION_KEY) -> tuple[list[dg.AssetKey], list[dg.AssetKey]]:
    """Assets before the approval gate and after it; the gate itself belongs to neither."""
    after_gate = dg.AssetSelection.assets(gate).downstream()
    before = (dg.AssetSelection.all() - after_gate).resolve(graph)
    after = (after_gate - dg.AssetSelection.assets(gate)).resolve(graph)
    return sorted(before), sorted(after)


def synchronous_instance(home: str) -> dg.DagsterInstance:
    """DAGSTER_HOME's storage (the UI sees every run), launching each run in this process."""
    ref = InstanceRef.from_dir(
        home,
        overrides={
            # Step events are DEBUG: all kept in the runs' records (the UI), only INFO and up printed.
            "python_logs": {"python_log_level": "INFO"},
            **IN_PROCESS_INSTANCE,
        },
    )
    return dg.DagsterInstance.from_ref(ref)


@contextmanager
def in_process_workspace(instance: dg.DagsterInstance) -> Iterator[WorkspaceProcessContext]:
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(executable_path=sys.executable, module_name=CODE_MODULE, working_directory=str(REPO_ROOT)),
        location_name=LOCATION,
    )
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as context:
        yield context


def submit_backfill(instance: dg.DagsterInstance, graph, keys: list[dg.AssetKey], title: str) -> str:
    """Record an asset backfill of ``keys``, every partition (requested: nothing runs yet)."""
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=make_new_backfill_id(),
        asset_graph=graph,
        partition_names=None,
        asset_selection=keys,
        backfill_timestamp=time.time(),
        tags=process_tags(),
        dynamic_partitions_store=instance,
        all_partitions=True,
        title=title,
        description="make run",
        run_config=None,
    )
    instance.add_backfill(backfill)
    return backfill.backfill_id


def backfill_all(context: WorkspaceProcessContext, keys: list[dg.AssetKey], title: str, log=print) -> bool:
    """One asset backfill of ``keys``, every partition, driven to the end; True if it succeeded."""
    instance = context.instance
    backfill_id = submit_backfill(instance, context.create_request_context().asset_graph, keys, title)
    log(f"[make run] backfill {backfill_id} ({title}): {len(keys)} assets")
    logger = logging.getLogger("make-run")
    seen: set[str] = set()
    while (status := instance.get_backfill(backfill_id).status) not in DONE:
        for error in execute_backfill_iteration(context, logger):
            if error is not None:
                log(f"[make run] backfill error: {error.to_string()}")
        for run in reversed(instance.get_runs(dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))):
            if run.run_id in seen or not run.is_finished:
                continue
            seen.add(run.run_id)
            stats = instance.get_run_stats(run.run_id)
            log(
                f"[make run]   run {run.run_id[:8]} {run.status.value.lower()} in "
                f"{(stats.end_time or 0) - (stats.start_time or 0):.1f}s: {describe(run)}"
            )
    return status in (BulkActionStatus.COMPLETED_SUCCESS, BulkActionStatus.COMPLETED)


def describe(run) -> str:
    keys = sorted("/".join(k.path) for k in (run.asset_selection or []))
    span = ""
    start, end = run.tags.get("dagster/asset_partition_range_start"), run.tags.get("dagster/asset_partition_range_end")
    if start:
        span = f" [{start} .. {end}]"
    elif run.tags.get("dagster/partition"):
        span = f" [{run.tags['dagster/partition']}]"
    shown = ", ".join(keys[:4]) + (f" +{len(keys) - 4}" if len(keys) > 4 else "")
    return shown + span


def approve_first_model(context: WorkspaceProcessContext, horizon: str) -> bool:
    job = build_definitions().resolve_job_def(PROMOTE_JOB)
    result = job.execute_in_process(
        instance=context.instance,
        tags=process_tags(),
        run_config={"ops": {"ml__production_model": {"config": {**BOOTSTRAP_APPROVAL, "horizon": horizon}}}},
    )
    if (why := refused(result)) is not None:
        print(f"[make run] {horizon}: approval refused: {why}")
        return False
    return result.success


def build_team_products(instance: dg.DagsterInstance) -> bool:
    """The other code location's assets (workspace.yaml: airport_ops), built on the catalog just
    published, then published with it: the team's asset is not left unmaterialized for the UI to
    show as if broken."""
    from teams.airport_ops.definitions import build as build_team

    team = dg.materialize(list(build_team().assets), instance=instance, tags=process_tags(), raise_on_error=False)
    if not team.success:
        print("[make run] the airport_ops team's asset failed: see its run in the UI")
        return False
    return (
        build_definitions()
        .resolve_job_def(PUBLISH_JOB)
        .execute_in_process(instance=instance, tags=process_tags(), raise_on_error=False)
        .success
    )


def main() -> int:
    # Every run reloads the definitions; one "beta parameter" warning per asset per run is noise here.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited")
    Settings.from_env().ensure()
    home = os.environ["DAGSTER_HOME"]
    instance = synchronous_instance(home)
    for run_id in sweep_dead_runs(instance):  # a killed earlier `make run` no longer blocks the queue
        print(f"[make run] marked failed: run {run_id}, whose process had died")
    with in_process_workspace(instance) as context:
        before, after = split_at_gate(context.create_request_context().asset_graph)
        started = time.perf_counter()
        if not backfill_all(context, before, "make run: up to the approval gate"):
            return 1
        print(f"[make run] up to the gate: {time.perf_counter() - started:.1f}s")
        for horizon in HORIZONS:
            t = time.perf_counter()
            current = Registry(Settings.from_env()).production_version(horizon)
            if current:  # only the first production model is approved by `make run`; later ones by a person
                print(
                    f"[make run] {horizon} production model {current} kept; a newer candidate waits for `make promote`"
                )
            elif not approve_first_model(context, horizon):
                return 1
            else:
                print(
                    f"[make run] approval recorded, {PRODUCTION_KEY.to_user_string()} ({horizon}) in "
                    f"{time.perf_counter() - t:.1f}s"
                )
        t = time.perf_counter()
        if not backfill_all(context, after, "make run: after the approval gate"):
            return 1
        print(f"[make run] after the gate: {time.perf_counter() - t:.1f}s")
        t = time.perf_counter()
        if not build_team_products(instance):
            return 1
        print(f"[make run] the team location's products, published: {time.perf_counter() - t:.1f}s")
    print(summary(Settings.from_env()))
    return 0


def summary(settings: Settings) -> str:
    with connect_catalog(settings) as con:
        n, distinct = con.execute("select count(*), count(distinct flight_id) from curated.fct_flights").fetchone()
        scored = con.execute(
            "select s.horizon, count(distinct s.flight_date), count(*), any_value(s.model_version), "
            "any_value(r.holdout_roc_auc) from ml.flight_delay_scores s join ml.model_registry r using (model_version) "
            "group by all order by 1"
        ).fetchall()
    lines = "\n".join(
        f"  ml.flight_delay_scores ({horizon}): {rows:,} scores over {days} days from production model "
        f"{model} (test-window ROC AUC {auc:.4f})"
        for horizon, days, rows, model, auc in scored
    )
    return f"""
Lakehouse ({settings.env}): {settings.root}
Analyst catalog (read-only): {settings.catalog_path}
  curated.fct_flights: {n:,} rows, {distinct:,} distinct flight_id
{lines}
Monitoring reports (open offline): {settings.reports_dir / "index.html"}
Evidently UI:                 make monitor-ui   (http://127.0.0.1:8000)
Sandbox for your own tables:  make sandbox
Dagster UI:                   make dev   (http://127.0.0.1:3000): the two backfills under Runs > Backfills
"""


if __name__ == "__main__":
    sys.exit(main())
