"""`make sandbox`: a Python prompt with `con`, a writable DuckDB of your own
(lakehouse/sandbox/<user>.duckdb) where the catalog is attached read-only as `analytics`."""

from resources.catalog.publish import connect_sandbox
from resources.core.settings import Settings

if __name__ == "__main__":
    settings = Settings.from_env()
    con = connect_sandbox(settings)
    print(
        f"con = sandbox {settings.sandbox_dir}; catalog attached read-only as 'analytics'; "
        "files only in your own folder beside it (exports)."
    )
    print('try: con.sql("select * from analytics.curated.carrier_daily_performance limit 5").show()')
