"""The analyst catalog as an asset: republished after the layers it exposes."""

from collections.abc import Sequence

import dagster as dg

from assets.automation import republish
from assets.common import DATA_ENGINEERING, WAREHOUSE_POOL
from resources.catalog.publish import product_views, publish_catalog
from resources.core.lakehouse_resource import LakehouseResource
from resources.ml.lake import catalog_views as ml_views
from resources.ml.registry.storage import Registry
from resources.monitoring.catalog import catalog_views as monitoring_views
from resources.raw.archive import catalog_views as raw_views

CATALOG_KEY = dg.AssetKey(["catalog", "analytics"])
CATALOG_TABLES_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn(
            "schema_name", "varchar", "Zone: curated, snapshots, ml, monitoring, catalog, or a team's product schema."
        ),
        dg.TableColumn("table_name", "varchar", "Table as analysts query it: <schema_name>.<table_name>."),
        dg.TableColumn("row_count", "bigint", "Rows in this published version."),
    ]
)


def build_catalog_asset(upstream: Sequence[dg.AssetKey]) -> dg.AssetsDefinition:
    @dg.asset(
        key=CATALOG_KEY,
        group_name="publish",
        pool=WAREHOUSE_POOL,
        automation_condition=republish(),
        kinds={"duckdb"},
        owners=[DATA_ENGINEERING],
        deps=list(upstream),
        metadata={"dagster/column_schema": CATALOG_TABLES_SCHEMA},  # its table of contents: catalog.tables
        description="analytics.duckdb: a read-only DuckLake catalog pinned at a published snapshot of "
        "the warehouse (curated, snapshots, ML, monitoring, teams' products; no data copied), one "
        "file per version in published/ (newest 5 kept), switched atomically so open sessions never "
        "block or break.",
    )
    def analyst_catalog(context: dg.AssetExecutionContext, lakehouse: LakehouseResource) -> dg.MaterializeResult:
        settings = lakehouse.settings()
        # ml.model_registry / ml.model_audit are re-derived from the verified chain on every
        # publish: a forged or edited registry fails here instead of being shown.
        Registry(settings).export()
        products, refused = product_views(settings)
        for name in refused:
            context.log.warning(f"{name}: not published (a platform schema or not a plain lower-case name)")
        result = publish_catalog(
            settings, [*ml_views(settings), *monitoring_views(settings), *raw_views(settings), *products]
        )
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(result.catalog_path)),
                "version": result.version,
                "tables": len(result.row_counts),
                "dagster/row_count": sum(result.row_counts.values()),
                # The same rows as the catalog.tables table analysts query (column schema above).
                "tables_published": dg.MetadataValue.table(
                    records=[
                        dg.TableRecord(
                            {"schema_name": k.split(".", 1)[0], "table_name": k.split(".", 1)[1], "row_count": n}
                        )
                        for k, n in sorted(result.row_counts.items())
                    ],
                    schema=CATALOG_TABLES_SCHEMA,
                ),
                "published_bytes": result.bytes_published,
            }
        )

    return analyst_catalog
