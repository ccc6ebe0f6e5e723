{# dbt-spark 1.11's session method puts seed values into the INSERT between quotes without
   escaping them, so "New Year's Day" (seeds/us_federal_holidays.csv) ends the string early and the
   seed fails with a syntax error. This is dbt-spark's spark__load_csv_rows with one change: text
   values are escaped for Spark's string literals (backslash, then quote) before they are bound.
   (Spark reads '' inside a literal as two adjacent literals, not as a quote.) #}
{% macro spark__load_csv_rows(model, agate_table) %}

  {% set batch_size = get_batch_size() %}
  {% set column_override = model['config'].get('column_types', {}) %}

  {% set statements = [] %}

  {% for chunk in agate_table.rows | batch(batch_size) %}
      {% set bindings = [] %}

      {% for row in chunk %}
          {% for value in row %}
              {% if value is string %}
                  {% do bindings.append(value | replace('\\', '\\\\') | replace("'", "\\'")) %}
              {% else %}
                  {% do bindings.append(value) %}
              {% endif %}
          {% endfor %}
      {% endfor %}

      {% set sql %}
          insert into {{ this.render() }} values
          {% for row in chunk -%}
              ({%- for col_name in agate_table.column_names -%}
                  {%- set inferred_type = adapter.convert_type(agate_table, loop.index0) -%}
                  {%- set type = column_override.get(col_name, inferred_type) -%}
                    cast({{ get_binding_char() }} as {{type}})
                  {%- if not loop.last%},{%- endif %}
              {%- endfor -%})
              {%- if not loop.last%},{%- endif %}
          {%- endfor %}
      {% endset %}

      {% do adapter.add_query(sql, bindings=bindings, abridge_sql_log=True) %}

      {% if loop.index0 == 0 %}
          {% do statements.append(sql) %}
      {% endif %}
  {% endfor %}

  {# Return SQL so we can render it out into the compiled files #}
  {{ return(statements[0]) }}
{% endmacro %}
