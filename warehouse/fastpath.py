"""The vectorised fast path of ingestion: DuckDB's JSON functions accept the plain lines.

Validating 500k lines one by one in Python cost ~9 CPU s on Online Retail (decoding, then
`validate_event`'s per-field calls). Here one SQL statement over a whole landing day's lines
(multi-threaded in DuckDB) accepts every line that is *certainly* valid, and builds its row.

It only ever accepts. A line it does not accept is handed to the per-line path
(`warehouse.ingest.ingest_lines`), which decides it exactly as before and gives the
quarantine reason; so the reasons cannot drift, and the fast path only has to be sound:
whatever it accepts, the per-line path accepts too, with the same row. It is therefore
narrower than the envelope: plain printable-ASCII identifiers, RFC 3339 timestamps in
their usual spelling, flat properties of strings, integers, flags and nulls, no `\\u`
escape, no recommendation events. Unusual lines take the slower, exact road.
"""

from __future__ import annotations

import sys

import duckdb
import pyarrow as pa

from warehouse.envelope import (
    EVENT_FIELDS,
    MAX_ID_CHARS,
    MAX_LINE_BYTES,
    PRODUCT_EVENT_TYPES,
    QUANTITY_EVENT_TYPES,
    RECOMMENDATION_EVENT_TYPES,
    SHOP_EVENT_TYPES,
    TYPED_PROPERTIES,
)

FIELDS = EVENT_FIELDS  # the JSON keys a plain line carries, in the stored order
# Event types decided here; the recommendation types' property rules stay per line.
FAST_EVENT_TYPES = tuple(t for t in SHOP_EVENT_TYPES if t not in RECOMMENDATION_EVENT_TYPES)
# Python's str.strip() removes exactly these; a query that starts or ends with one goes to
# the per-line path (built from Python itself, so the two cannot disagree).
_PY_SPACE = "".join(f"\\x{{{ord(c):x}}}" for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
_INTS = "('BIGINT', 'UBIGINT')"
_ABSENT = "(t_{0} is null or t_{0} = 'NULL')"


def _sql_list(values) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def _identifier(name: str) -> str:
    """A present identifier the per-line rule passes unchanged: printable ASCII, no space at
    either end (so strip() keeps it), 1 to MAX_ID_CHARS characters."""
    return (
        f"(t_{name} = 'VARCHAR' and strlen(v_{name}) <= {MAX_ID_CHARS} "
        f"and regexp_full_match(v_{name}, '[!-~]|[!-~][ -~]*[!-~]'))"
    )


_TYPED_KEYS = tuple(TYPED_PROPERTIES)
# One parse of the line answers the JSON type of every field and typed property key.
_TYPE_PATHS = [f"$.{f}" for f in FIELDS] + [f"$.properties.{key}" for key in _TYPED_KEYS]


def _type_of(name: str) -> str:
    return f"t[{FIELDS.index(name) + 1}]"


def _property_types() -> str:
    """Each typed property key has its documented JSON type (or is null or absent)."""
    allowed = {"string": "('VARCHAR', 'BIGINT', 'UBIGINT', 'NULL')", "boolean": "('BOOLEAN', 'NULL')"}
    return " and ".join(
        f"coalesce(t[{len(FIELDS) + n}] in {allowed[kind]}, true)"
        for n, (kind, _) in enumerate(TYPED_PROPERTIES.values(), start=1)
    )


# Stage 1 (`candidates`): cheap text guards, then a few parses of the line (DuckDB's JSON
# functions each parse it again, so they are few and answer lists). The guards keep out
# what DuckDB's JSON reader accepts and orjson refuses (trailing commas, NaN, Infinity) or
# may decode differently (\u escapes, NUL), oversized lines and lines that are not UTF-8.
# The raw lines still end in their "\n" (zero-copy slices of the file): JSON whitespace.
# Stage 2 (`fields`, `checked`): the envelope's rules on the fields, as columnar predicates.
FAST_ACCEPT_SQL = f"""
with candidates as materialized (
    select file_index, line_number, earliest, latest, line,
           json_type(line, {_sql_list(_TYPE_PATHS)}) as t,
           json_extract_string(line, {_sql_list("$." + f for f in FIELDS)}) as v,
           json_keys(line) as keys,
           json_keys(line, '$.properties') as p_keys,
           json_type(line, '$.properties.*') as p_types
    from (
        select file_index, line_number, earliest, latest, case when utf8 then decode(raw) end as line
        from landing_lines
        where nbytes <= {MAX_LINE_BYTES}
    )
    where line is not null
      and not contains(line, '\\u')
      and not contains(line, chr(0))
      and not regexp_matches(line, ',[ \\t\\r\\n]*[}}\\]]')
      and regexp_matches(line, '^[ \\t\\r]*\\{{')
      and json_valid(line)
),
fields as (
    select file_index, line_number, earliest, latest, keys, p_keys, p_types, t, {
    ", ".join(f"{_type_of(f)} as t_{f}, v[{i}] as v_{f}" for i, f in enumerate(FIELDS, start=1))
},
           lower(v[{FIELDS.index("event_type") + 1}]) as event_type
    from candidates
    -- Every key a known field, none twice: json_type answers a type for each field present,
    -- so any other key or a repeated one makes the line hold more keys than that.
    where len(keys) = {" + ".join(f"(t[{i}] is not null)::int" for i in range(1, len(FIELDS) + 1))}
),
typed as (
    select *,
           case when t_occurred_at = 'VARCHAR' and regexp_full_match(v_occurred_at,
                    '\\d{{4}}-\\d{{2}}-\\d{{2}}T([01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(\\.\\d{{3}}|\\.\\d{{6}})?(Z|[+-]([01]\\d|2[0-3]):[0-5]\\d)')
                then try_strptime(left(v_occurred_at, 19), '%Y-%m-%dT%H:%M:%S')
                     + to_microseconds(coalesce(
                           cast(rpad(regexp_extract(v_occurred_at, '\\.(\\d+)', 1), 6, '0') as bigint), 0))
                     - to_minutes(case when right(v_occurred_at, 1) = 'Z' then 0
                                  else (case when left(right(v_occurred_at, 6), 1) = '-' then -1 else 1 end)
                                       * (cast(substr(right(v_occurred_at, 5), 1, 2) as bigint) * 60
                                          + cast(right(v_occurred_at, 2) as bigint)) end)
           end as occurred_utc
    from fields
    where t_event_type = 'VARCHAR' and event_type in {tuple(FAST_EVENT_TYPES)}
),
checked as (
    select * from typed
    where {_identifier("event_id")}
      and regexp_full_match(v_event_type, '[A-Za-z_]+')
      and occurred_utc between earliest and latest
      and (case when event_type in {tuple(PRODUCT_EVENT_TYPES)} then {_identifier("product_id")}
                else {_ABSENT.format("product_id")} or {_identifier("product_id")} end)
      and ({_ABSENT.format("user_id")} or {_identifier("user_id")})
      and ({_ABSENT.format("session_id")} or {_identifier("session_id")})
      and (case when event_type in {tuple(QUANTITY_EVENT_TYPES)}
                then t_quantity in {_INTS} and try_cast(v_quantity as bigint) between 1 and 1000000
                else {_ABSENT.format("quantity")}
                     or (t_quantity in {
    _INTS
} and try_cast(v_quantity as bigint) between -1000000 and 1000000)
           end)
      and ({_ABSENT.format("price")}
           or (t_price in ('BIGINT', 'UBIGINT', 'DOUBLE')
               and isfinite(try_cast(v_price as double))
               and try_cast(v_price as double) between 0 and 1000000))
      and ({_ABSENT.format("currency")}
           or (t_currency = 'VARCHAR' and regexp_full_match(v_currency, '[A-Za-z]{{3}}')))
      and (case when event_type = 'search' then t_query = 'VARCHAR' else {_ABSENT.format("query")}
                or t_query = 'VARCHAR' end)
      and (t_query is distinct from 'VARCHAR'
           or regexp_full_match(v_query, '(?s)[^{_PY_SPACE}](.*[^{_PY_SPACE}])?'))
      and ({_ABSENT.format("properties")}
           or (t_properties = 'OBJECT'
               and list_unique(p_keys) = len(p_keys)
               -- flat: json_type's other answers are VARCHAR, BIGINT, UBIGINT, BOOLEAN, NULL
               and not list_has_any(p_types, ['OBJECT', 'ARRAY', 'DOUBLE'])
               and {_property_types()}))
)
select v_event_id as event_id,
       event_type,
       cast(occurred_utc as timestamp) as occurred_at,
       v_user_id as user_id,
       v_session_id as session_id,
       v_product_id as product_id,
       cast(v_quantity as integer) as quantity,
       cast(v_price as double) as price,
       upper(v_currency) as currency,
       v_query as query,
       case when t_properties = 'OBJECT' then v_properties end as properties,
       file_index,
       line_number
from checked
"""
# Escapes in the stored properties text other than \\" and \\\\ (a control character as \\n,
# say) might be spelt differently by orjson, which writes the per-line path's text.
_PLAIN_PROPERTIES = r"""properties is null or not regexp_matches(properties, '(^|[^\\])(\\\\)*\\[^"\\]')"""


def fast_accept(con: duckdb.DuckDBPyConnection, lines: pa.Table) -> pa.Table:
    """The rows the fast path accepts among `lines` (file_index int32, line_number int64,
    nbytes int64: the line's length without its line end, utf8 bool: whether it decodes,
    earliest and latest timestamp: its landing day's window, raw binary: the line with its
    line end): RAW_EVENTS_SCHEMA's columns, with file_index in place of _source_file."""
    # DuckDB copies a WHERE into the CTEs and subqueries below it and keeps the original, so
    # the envelope's checks ran two or three times (6.8 µs a line, 4.1 without). The
    # connection is the fast path's own scratch one, never the warehouse.
    con.execute("set disabled_optimizers = 'cte_filter_pusher,filter_pushdown'")
    con.register("landing_lines", lines)
    try:
        return con.sql(f"select * from ({FAST_ACCEPT_SQL}) where {_PLAIN_PROPERTIES}").to_arrow_table()
    finally:
        con.unregister("landing_lines")
