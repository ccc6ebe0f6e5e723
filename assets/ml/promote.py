"""`make promote APPROVER=... REASON=... [VERSION=...] [HORIZON=...]` and `make rollback APPROVER=...
REASON=... [HORIZON=...]`: launch the promote_model job with a recorded approval (the same job the
UI's launchpad runs). HORIZON is day_ahead (default) or nowcast_2h.

The Makefile passes the values as PROMOTE_APPROVER / PROMOTE_REASON / PROMOTE_VERSION /
PROMOTE_HORIZON in the environment (never through shell code); command-line flags override them."""

from __future__ import annotations

import argparse
import os
import sys

import dagster as dg

from assets.definitions import build_definitions
from assets.jobs import PROMOTE_JOB
from assets.ml.model import PRODUCTION_OP
from resources.core.runs import process_tags, sweep_dead_runs
from resources.ml.features.availability import DAY_AHEAD, HORIZONS


def refused(result) -> str | None:
    """Why a promote_model run changed nothing (its `refused` observation), or None."""
    for event in result.all_events:
        if event.event_type_value == "ASSET_OBSERVATION":
            metadata = event.event_specific_data.asset_observation.metadata
            if "refused" in metadata:
                return metadata["refused"].value
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--approver", default=os.environ.get("PROMOTE_APPROVER", ""))
    parser.add_argument("--reason", default=os.environ.get("PROMOTE_REASON", ""))
    parser.add_argument(
        "--version",
        default=os.environ.get("PROMOTE_VERSION", ""),
        help="model version (default: newest pre-production)",
    )
    parser.add_argument(
        "--horizon",
        default=os.environ.get("PROMOTE_HORIZON") or DAY_AHEAD,
        choices=HORIZONS,
        help="whose production model changes (default: day_ahead)",
    )
    parser.add_argument("--rollback", action="store_true", help="return to the previous production model")
    args = parser.parse_args(argv)
    config = {
        "approver": args.approver,
        "reason": args.reason,
        "model_version": args.version,
        "action": "rollback" if args.rollback else "promote",
        "horizon": args.horizon,
    }
    instance = dg.DagsterInstance.get()
    sweep_dead_runs(instance)
    try:
        result = (
            build_definitions()
            .resolve_job_def(PROMOTE_JOB)
            .execute_in_process(
                instance=instance,
                raise_on_error=False,
                tags=process_tags(),
                run_config={
                    "ops": {PRODUCTION_OP: {"config": config}},
                    "loggers": {"console": {"config": {"log_level": "WARNING"}}},
                },
            )
        )
    except dg.DagsterConfigMappingFunctionError as exc:  # refused at submit: no run exists
        print(f"refused: {exc.__cause__ or exc}", file=sys.stderr)
        return 1
    refusal = refused(result)
    if not result.success or refusal:
        failure = next((e for e in result.all_events if e.is_step_failure), None)
        error = failure.step_failure_data.error if failure else None
        message = refusal or ((error.cause or error).message.strip() if error else "the promote_model run failed")
        print(f"refused: {message}", file=sys.stderr)
        return 1
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    print(
        f"{meta['horizon'].value} production model: {meta['model_version'].value} "
        f"(previous: {meta['previous_version'].value})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
