{#- The consistent cut (docs/dbt.md, "Gold is a consistent cut"): gold holds a source transaction
    wholly or not at all. gold.cut names the position P; these macros let each gold model take
    the rows at or below it. -#}

{#- The cut's position P as a constant (0 before the first whole transaction), so the warehouse
    can skip blocks above it. Read once per build (once_per_build), by the first node of each
    dbt thread to ask (they may ask at once): every caller refs the cut, so runs after it was
    built, and nothing else in the build writes it; eight nodes of a build asked. -#}
{% macro cut_lsn() -%}
    {%- set key = 'cut_lsn ' ~ ref('cut') -%}
    {%- set held = once_per_build() -%}
    {%- if key in held -%}
        {{- return(held[key]) -}}
    {%- endif -%}
    {#- dbt docs generate compiles every model against an empty scratch warehouse: no cut yet. -#}
    {%- if execute and load_relation(ref('cut')) is not none -%}
        {%- set found = run_query("select max(lsn) as cut_lsn from " ~ ref('cut')) -%}
        {%- set lsn = found.columns[0].values()[0] if found.rows | length > 0 else none -%}
        {%- do held.update({key: lsn if lsn is not none else 0}) -%}
        {{- return(held[key]) -}}
    {%- endif -%}
    {{- return(0) -}}
{%- endmacro %}

{#- A dict that lives as long as this dbt invocation, shared by its nodes, for values that
    cannot change during it. dbt has no such place: the graph lives as long as the manifest (the
    warm worker reuses it build after build: shared/dbtrun/worker.py), so the dict is filed
    there under this invocation's id and dropped by the next invocation. Two threads may fill
    the same key at once; both write the same value. -#}
{% macro once_per_build() -%}
    {%- set held = graph.setdefault('fin_once_per_build', {}) -%}
    {%- for old in held.keys() | list if old != invocation_id -%}
        {%- do held.pop(old, none) -%}
    {%- endfor -%}
    {{- return(held.setdefault(invocation_id, {})) -}}
{%- endmacro %}

{#- The newest value of column in this model's own table, as a constant (default when the
    table is empty or this is a full build). -#}
{% macro own_max(column, default) -%}
    {%- if is_incremental() and execute -%}
        {%- set found = run_query("select max(" ~ column ~ ") from " ~ this) -%}
        {%- set value = found.columns[0].values()[0] if found.rows | length > 0 else none -%}
        {{- return(value if value is not none else default) -}}
    {%- endif -%}
    {{- return(default) -}}
{%- endmacro %}

{#- The END records above from_lsn and at or below to_lsn: tx_id, the commit time to the
    millisecond (Debezium's ts_ms) and the END's position. -#}
{% macro transaction_ends(from_lsn, to_lsn) -%}
    select distinct tx_id, {{ instant_from_us('commit_ts_us') }} as committed_ms, lsn as end_lsn
    from {{ source('raw', 'transaction_metadata') }}
    where op = 'END' and lsn > {{ from_lsn }} and lsn <= {{ to_lsn }}
{%- endmacro %}

{#- The least BEGIN position of the transactions whose END is in (from_lsn, to_lsn], as a
    constant: no event of them sits below it, so reading the change log from there is enough. -#}
{% macro first_begin_lsn(from_lsn, to_lsn) -%}
    {%- set metadata = source('raw', 'transaction_metadata') -%}
    {%- if execute and load_relation(metadata) is not none -%}
        {%- set found = run_query("select min(b.lsn) from " ~ metadata ~ " as b inner join " ~ metadata ~ " as e"
            ~ " on b.tx_id = e.tx_id and b.commit_ts_us = e.commit_ts_us"
            ~ " where b.op = 'BEGIN' and e.op = 'END' and e.lsn > " ~ from_lsn ~ " and e.lsn <= " ~ to_lsn) -%}
        {%- set lsn = found.columns[0].values()[0] if found.rows | length > 0 else none -%}
        {{- return(lsn if lsn is not none else to_lsn) -}}
    {%- endif -%}
    {{- return(to_lsn) -}}
{%- endmacro %}

{#- Rows of a change log (alias c, joined to join_transaction_ends as e) that enter gold when
    the cut moves from from_lsn to to_lsn: a streamed event whose transaction's END is in
    (from_lsn, to_lsn] (matched by tx_id and the commit millisecond), and a snapshot read (or
    inferred delete: no END) at a position in (from_lsn, to_lsn], or at or below to_lsn and
    loaded since the model's last run (a read loaded after the cut passed its position). begin:
    first_begin_lsn(from_lsn, to_lsn), when the caller has it already. -#}
{% macro entering_cut(from_lsn, to_lsn, begin=none) -%}
    {%- set begin = first_begin_lsn(from_lsn, to_lsn) if begin is none else begin -%}
    c.lsn <= {{ to_lsn }} and (
        ({{ streamed('c.') }} and e.end_lsn is not null and c.lsn >= {{ begin }})
        or (not {{ streamed('c.') }} and (c.lsn > {{ from_lsn }} or {{ loaded_since_last_run('c._loaded_at') }})))
{%- endmacro %}

{#- The rows of changes that entering_cut(from_lsn, to_lsn, begin) can take, as a subquery whose
    every branch is bounded by one column: those from the least position it takes on (begin, or
    a read above from_lsn) to to_lsn, and the reads below that loaded since the model's last run.
    entering_cut's own condition is an `or` across lsn and _loaded_at, which the warehouse cannot
    skip blocks with: the whole change log was read on every build. -#}
{% macro changes_entering(changes, from_lsn, to_lsn, begin) -%}
    {%- set lower = [begin, from_lsn + 1] | min -%}
    (select * from {{ changes }} where lsn >= {{ lower }} and lsn <= {{ to_lsn }}
    union all
    select * from {{ changes }}
    where lsn < {{ lower }} and not {{ streamed() }} and {{ loaded_since_last_run('_loaded_at') }})
{%- endmacro %}

{#- The position at which a row entered gold: its transaction's END, or a read's own position. -#}
{% macro end_lsn_of(alias='c') -%}
    case when {{ streamed(alias ~ '.') }} then e.end_lsn else {{ alias }}.lsn end
{%- endmacro %}

{% macro join_transaction_ends(from_lsn, to_lsn, alias='c') -%}
    left join ({{ transaction_ends(from_lsn, to_lsn) }}) as e
        on {{ alias }}.tx_id = e.tx_id and date_trunc('millisecond', {{ alias }}.committed_at) = e.committed_ms
{%- endmacro %}

{#- The versions of a history within the cut the build computed (a *_in_cut table's full build):
    a streamed version whose transaction's END is at or below the cut, a read or inferred delete
    at or below it. A key's versions are in commit order, so those in the cut are a prefix; a
    version after one that is not (its read still on its way) waits with it. valid_to and
    is_current are recomputed from the versions kept, so the last one in the cut is current;
    end_lsn says where a version entered gold (its transaction's END, a read's own position).
    Readers see these as of the published cut (published_versions in macros/dimensions.sql). -#}
{% macro history_in_cut(history, key) -%}
with cut as (
    select max(lsn) as lsn from {{ ref('cut') }}
),

marked as (
    select h.*,
        case when {{ streamed('h.') }} then e.end_lsn is not null else h.lsn <= (select lsn from cut) end as in_cut,
        -- where the version entered gold (its transaction's END, a read's own position)
        {{ end_lsn_of('h') }} as end_lsn
    from {{ history }} as h
    {{ join_transaction_ends(-1, '(select lsn from cut)', 'h') }}
),

{{ cut_prefix(key) }}
{%- endmacro %}

{#- The end of history_in_cut and dimension_in_cut: from the CTE marked (a history's versions with
    in_cut and end_lsn), each key's prefix in the cut with valid_to and is_current recomputed. -#}
{% macro cut_prefix(key) -%}
prefix as (
    select marked.*,
        min(case when not in_cut then lsn end) over (partition by {{ key }}) as first_out
    from marked
)

select prefix.* exclude (valid_to, is_current, in_cut, first_out),
    lead(valid_from) over (partition by {{ key }} order by lsn) as valid_to,
    lead(valid_from) over (partition by {{ key }} order by lsn) is null as is_current
from prefix
where first_out is null or lsn < first_out
{%- endmacro %}

{#- The SourceID (Kafka cluster) in a bronze object key (shared/bronze Key: "...-<source>.parquet",
    8 hex digits); NULL for a key outside that grammar, which the loader never loads (the tests'
    hand-made keys: one source). -#}
{% macro key_source(column) -%}
    case when {{ column }} like '%.parquet' then substr({{ column }}, length({{ column }}) - 15, 8) end
{%- endmacro %}

{#- A source id (key_source's value, read back by run_query) as a SQL literal. -#}
{% macro source_literal(value) -%}
    {%- if value is none -%} cast(null as varchar) {%- else -%} '{{ value | replace("'", "''") }}' {%- endif -%}
{%- endmacro %}
