"""Airport operations' own logic: expected late departures per airport and hour, read from the
platform's analyst catalog through the columns the contract names (and no others)."""

from __future__ import annotations

import importlib.util
import os
import uuid
from pathlib import Path

import duckdb
import yaml

CONTRACT = Path(__file__).with_name("contract.yml")
PRODUCT = ("airport_ops", "expected_late_departures")


class ContractBroken(RuntimeError):
    pass


def load_contract(path: Path = CONTRACT) -> dict:
    return yaml.safe_load(path.read_text())


def lakehouse_root() -> Path:
    """The platform's storage root: LAKEHOUSE_ROOT, else the repository's lakehouse/."""
    root = os.environ.get("LAKEHOUSE_ROOT") or ""
    if "://" in root:
        raise NotImplementedError(
            f"LAKEHOUSE_ROOT={root}: this team location reads and writes a local lakehouse "
            "folder; on object storage it would read the committed catalog version and "
            "upload its product, which it does not do yet"
        )
    return Path(root or Path(__file__).resolve().parents[2] / "lakehouse").resolve()


def contract_violations(contract: dict, columns: dict[str, dict[str, str]]) -> list[str]:
    """Every promised column that is missing or of another type; ``columns`` maps
    "schema.table" to {column: type} as the provider declares or publishes them."""
    problems = []
    for table, product in contract["products"].items():
        have = {c.lower(): t.lower() for c, t in columns.get(table, {}).items()}
        if not have:
            problems.append(f"{table}: table missing (owner {product['owner']})")
            continue
        for column, spec in product["columns"].items():
            if column not in have:
                problems.append(f"{table}.{column}: column missing (owner {product['owner']})")
            elif have[column] and not have[column].startswith(spec["type"]):  # "": type not declared
                problems.append(
                    f"{table}.{column}: type {have[column]}, contract says {spec['type']} (owner {product['owner']})"
                )
    return problems


def open_catalog(root: Path) -> duckdb.DuckDBPyConnection:
    """The platform's analyst catalog, read-only, in use: a DuckLake catalog file
    (``analytics.duckdb``) whose data files are the platform's warehouse files. DuckDB's DuckLake
    extension comes from the ``duckdb-ext-ducklake`` package the environment installs."""
    catalog = root / "analytics.duckdb"
    if not catalog.exists():
        raise FileNotFoundError(f"no analyst catalog at {catalog}: the platform has not published yet")
    spec = importlib.util.find_spec("duckdb_ext")
    extensions = Path(next(iter(spec.submodule_search_locations))) / "extensions"
    con = duckdb.connect(config={"extension_directory": str(extensions), "autoinstall_known_extensions": False})
    path, data = (catalog.as_posix().replace("'", "''"), (root / "warehouse").as_posix().replace("'", "''"))
    con.execute(f"attach 'ducklake:{path}' as analytics (read_only, data_path '{data}/', override_data_path true)")
    con.execute("use analytics")
    return con


def catalog_columns(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for schema, table, column, dtype in con.execute(
        "select table_schema, table_name, column_name, data_type from information_schema.columns "
        "where table_catalog = 'analytics'"
    ).fetchall():
        out.setdefault(f"{schema}.{table}", {})[column] = dtype
    return out


def build_expected_late_departures(root: Path, contract: dict | None = None) -> tuple[Path, int]:
    """Write products/airport_ops/expected_late_departures.parquet; (path, rows)."""
    contract = contract or load_contract()
    catalog = root / "analytics.duckdb"
    target = root / "products" / PRODUCT[0] / f"{PRODUCT[1]}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    with open_catalog(root) as con:
        problems = contract_violations(contract, catalog_columns(con))
        if problems:
            raise ContractBroken(
                f"{catalog}: the platform broke the contract in {CONTRACT.name}: " + "; ".join(problems)
            )
        con.execute(f"""
            copy (
                select f.origin as airport, f.flight_date, hour(f.scheduled_departure_local) as hour_local,
                       count(*) as flights, round(sum(s.p_late), 3) as expected_late_departures,
                       min(s.model_version) as model_version
                from curated.fct_flights f join ml.flight_delay_scores s using (flight_id)
                where not f.cancelled
                group by all order by all
            ) to '{tmp.as_posix()}' (format parquet)""")
        rows = con.execute(f"select count(*) from read_parquet('{tmp.as_posix()}')").fetchone()[0]
    os.replace(tmp, target)
    return target, rows
