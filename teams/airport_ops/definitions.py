"""Airport operations' code location (workspace.yaml: `airport_ops`). It imports nothing from the
platform: its inputs are the platform's data products by asset key (the global lineage draws
the edges across the two locations), read through the analyst catalog as contract.yml promises."""

import dagster as dg

from teams.airport_ops.logic import build_expected_late_departures, lakehouse_root, load_contract

OWNER = "team:airport-operations"


def _product_keys() -> list[dg.AssetKey]:
    return [dg.AssetKey(p["asset_key"]) for p in load_contract()["products"].values()]


def build() -> dg.Definitions:
    @dg.asset(
        key=["airport_ops", "expected_late_departures"],
        group_name="airport_ops",
        owners=[OWNER],
        kinds={"duckdb", "parquet"},
        # The products it reads, and the catalog it reads them through (so it runs after a publish).
        deps=[*_product_keys(), dg.AssetKey(["catalog", "analytics"])],
        automation_condition=dg.AutomationCondition.eager(),
        metadata={
            "dagster/column_schema": dg.TableSchema(
                columns=[
                    dg.TableColumn("airport", "varchar", "Departure airport (FAA)."),
                    dg.TableColumn("flight_date", "date", "Scheduled date, local."),
                    dg.TableColumn("hour_local", "bigint", "Scheduled departure hour, local."),
                    dg.TableColumn("flights", "bigint", "Scheduled flights that departed."),
                    dg.TableColumn(
                        "expected_late_departures", "double", "Sum of p_late: flights expected 15+ min late."
                    ),
                    dg.TableColumn("model_version", "varchar", "Production model behind the scores."),
                ]
            )
        },
        description="Expected late departures per airport and scheduled hour (sum of the platform's "
        "p_late), for gate and staff planning. Published into the analyst catalog as "
        "airport_ops.expected_late_departures at the platform's next publish.",
    )
    def expected_late_departures() -> dg.MaterializeResult:
        path, rows = build_expected_late_departures(lakehouse_root())
        return dg.MaterializeResult(metadata={"dagster/row_count": rows, "path": dg.MetadataValue.path(str(path))})

    return dg.Definitions(
        assets=[expected_late_departures],
        sensors=[
            dg.AutomationConditionSensorDefinition(
                "airport_ops_automation",
                target=dg.AssetSelection.all(),
                default_status=dg.DefaultSensorStatus.RUNNING,
                description="Rebuilds the team's table after the platform publishes new scores.",
            )
        ],
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build()
