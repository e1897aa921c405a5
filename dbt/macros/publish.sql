{#- Publishing the consistent cut (docs/dbt.md, "Published only after gold commits"). The model
    `cut` (silver.build_cut) is the cut a build computes and its models build to; readers (the
    dim_* views, the history API's as_of, BI) go by gold.cut, the published row, which this
    build's on-run-end writes last: only once the computed cut and every table built from it
    committed and nothing in the build failed. dbt commits each model on its own (Snowflake: a
    reader sees one model's rows before the next model's), so without this a reader could see the
    new cut before fct_postings held its rows. -#}

{#- gold.cut, the published cut (not a dbt model: the on-run-end hook writes it). -#}
{% macro published_cut() -%}
    {{- return(api.Relation.create(database=target.database, schema='gold', identifier='cut')) -}}
{%- endmacro %}

{#- on-run-start: gold.cut exists before any view that reads it is created (DuckDB binds a view
    when it is created). Empty until the first build publishes: readers then answer "no cut yet".
    Its columns are the computed cut's, so a warehouse whose gold.cut was the dbt model keeps it. -#}
{% macro prepare_published_cut() -%}
    {%- if execute and flags.WHICH in ('build', 'run') -%}
        {%- set pub = published_cut() -%}
        {%- do run_query("create schema if not exists " ~ pub.without_identifier()) -%}
        {%- do run_query("create table if not exists " ~ pub ~ " (cut_key varchar, lsn bigint, commit_ts "
            ~ instant_type() ~ ", built_at " ~ instant_type() ~ ", metadata_offset bigint)") -%}
    {%- endif -%}
{%- endmacro %}

{#- The unique ids of the models whose tables hold rows as of the computed cut: every model
    downstream of it that is not a view or ephemeral (they hold nothing; the dim_* views read
    gold.cut). -#}
{% macro cut_tables(cut_id) -%}
    {%- set found = namespace(ids=[cut_id], grew=true) -%}
    {#- Each pass adds the next level down; the DAG below the cut is a few models deep, so the
        passes after the last that grew do nothing. -#}
    {%- for _ in range(graph.nodes | length) if found.grew -%}
        {%- set found.grew = false -%}
        {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.unique_id not in found.ids -%}
            {%- if node.depends_on.nodes | select('in', found.ids) | list -%}
                {%- set found.ids = found.ids + [node.unique_id] -%}
                {%- set found.grew = true -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{- return(graph.nodes.values() | selectattr('unique_id', 'in', found.ids)
        | rejectattr('config.materialized', 'in', ['view', 'ephemeral']) | map(attribute='unique_id') | list) -}}
{%- endmacro %}

{#- Why this build publishes nothing (empty when it publishes): it did not build the computed
    cut, a node failed or was skipped, or a table built from the cut was left out of it (a build
    selecting the cut without its children would otherwise publish rows gold does not hold). -#}
{% macro publish_blocker(results) -%}
    {%- set cut_id = 'model.' ~ project_name ~ '.cut' -%}
    {%- set status = {} -%}
    {%- for r in results -%}{%- do status.update({r.node.unique_id: r.status | string}) -%}{%- endfor -%}
    {%- if status.get(cut_id) != 'success' -%}{{ return('the computed cut was not built') }}{%- endif -%}
    {%- for id, s in status.items() if s not in ('success', 'pass', 'warn', 'no-op') -%}
        {{- return(id ~ ' ' ~ s) -}}
    {%- endfor -%}
    {%- for id in cut_tables(cut_id) if status.get(id) != 'success' -%}
        {{- return(id ~ ' not built') -}}
    {%- endfor -%}
    {{- return('') -}}
{%- endmacro %}

{#- on-run-end: publishes the computed cut to gold.cut when publish_blocker finds nothing. Each
    statement is atomic, so a reader sees the previous row or the new one, never none or two.
    The console line is for people; the dbt-runner reads gold.cut itself (shared/dbtrun). -#}
{% macro publish_cut(results) -%}
    {%- if execute and flags.WHICH in ('build', 'run') -%}
        {%- set pub = published_cut() -%}
        {%- set blocker = publish_blocker(results) -%}
        {%- if blocker == '' -%}
            {%- set built = graph.nodes['model.' ~ project_name ~ '.cut'].relation_name -%}
            {%- set cols = ['cut_key', 'lsn', 'commit_ts', 'built_at', 'metadata_offset'] -%}
            {%- set assignments = [] -%}
            {%- for c in cols -%}{%- do assignments.append(c ~ ' = b.' ~ c) -%}{%- endfor -%}
            {%- do run_query("update " ~ pub ~ " set " ~ assignments | join(', ') ~ " from " ~ built ~ " as b") -%}
            {%- do run_query("insert into " ~ pub ~ " select " ~ cols | join(', ') ~ " from " ~ built
                ~ " where not exists (select 1 from " ~ pub ~ ")") -%}
            {%- do log('gold.cut published: lsn ' ~ run_query("select lsn from " ~ pub).columns[0].values() | join(', '), info=True) -%}
        {%- else -%}
            {%- do log('gold.cut not published: ' ~ blocker, info=True) -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
