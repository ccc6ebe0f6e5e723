"""Which dbt failures are DuckLake commit conflicts (built again) and which are real (fail the run)."""

import pytest

from resources.warehouse.conflicts import failure_summary, only_commit_conflicts

CONFLICT = (
    "Runtime Error in model stg_nycflights__flights\n  TransactionContext Error: Failed to commit: Failed to "
    'commit DuckLake transaction.\nTransaction conflict - attempting to create view "stg_nycflights__flights"'
)


def _results(*rows):
    return {
        "results": [{"unique_id": f"model.lakehouse.m{i}", "status": s, "message": m} for i, (s, m) in enumerate(rows)]
    }


@pytest.mark.fast
def test_only_conflicts_are_built_again():
    assert only_commit_conflicts(_results(("error", CONFLICT), ("skipped", None), ("success", "OK")))
    assert not only_commit_conflicts(
        _results(("error", CONFLICT), ("fail", "Got 3 results, configured to fail if != 0"))
    )
    assert not only_commit_conflicts(_results(("error", "Binder Error: column x not found")))
    assert not only_commit_conflicts(_results(("success", "OK")))  # nothing failed: nothing to retry
    assert not only_commit_conflicts({})  # no run_results.json: dbt did not get to run


@pytest.mark.fast
def test_the_failure_names_the_nodes_and_their_errors():
    text = failure_summary(_results(*[("error", f"Binder Error {i}") for i in range(7)]))
    assert "model.lakehouse.m0: Binder Error 0" in text and "(and 2 more)" in text
    assert failure_summary({}) == "no failed node in run_results.json"
