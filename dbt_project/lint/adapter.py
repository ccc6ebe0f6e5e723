"""dbt's ``adapter.dispatch`` for sqlfluff's jinja templater (``make lint``, ``.sqlfluff``).

Linting renders the models without dbt, so no adapter exists; the models' dialect macros
(macros/dialect.sql) dispatch through it. This resolves a dispatch to the macro's ``default__``
variant, the DuckDB SQL that dbt builds by default, so sqlfluff lints the SQL that runs.
"""

from jinja2 import pass_context


@pass_context
def dispatch(context, macro_name: str, macro_namespace: str | None = None):
    return context[f"default__{macro_name}"]
