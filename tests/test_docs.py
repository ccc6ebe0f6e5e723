"""`make docs`: dbt's documentation site generated offline, with the models, columns and tests."""

import re

from resources.core.settings import Settings
from resources.warehouse.docs import generate_docs


def test_docs_are_one_offline_file_with_models_columns_and_descriptions(tmp_path):
    settings = Settings(root=tmp_path / "lakehouse").ensure()  # no warehouse yet: descriptions and lineage
    path = generate_docs(settings)
    html = path.read_text()
    assert path == settings.reports_dir / "dbt-docs" / "index.html"
    assert "model.lakehouse.fct_flights" in html and "stg_nycflights__flights" in html
    assert "Unique flight key: YYYYMMDD-carrier-flight-origin-HHMM." in html  # a column description
    # Nothing is loaded from the network: no script or stylesheet with a remote source.
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"https?://", html)
