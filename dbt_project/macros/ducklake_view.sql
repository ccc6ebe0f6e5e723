{#- Views in the warehouse DuckLake are replaced by one statement. dbt's own view materialization
    creates the new view under a temporary name, renames the old one aside and the new one into
    place. DuckLake's renames are unreliable before DuckDB 1.5.3 (dbt-duckdb works around that for
    tables only), and with two writers a rename failed half-way through a build ("Cannot rename
    view stg_nycflights__flights to stg_nycflights__flights__dbt_backup, since
    stg_nycflights__flights already exists"). One CREATE OR REPLACE commits or conflicts as a whole,
    and a conflict is built again (assets/warehouse/dbt.py). Spark has its own adapter: not affected. -#}
{% materialization view, adapter='duckdb' %}
  {%- set target_relation = this.incorporate(type='view') -%}
  {%- set existing_relation = load_cached_relation(this) -%}
  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}
  {%- if existing_relation is not none and not existing_relation.is_view -%}
    {{ drop_relation_if_exists(existing_relation) }}
  {%- endif %}
  {% call statement('main') -%}
    create or replace view {{ target_relation }} as (
      {{ sql }}
    );
  {%- endcall %}
  {% do persist_docs(target_relation, model) %}
  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {{ adapter.commit() }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}
  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
