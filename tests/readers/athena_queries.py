"""Runs the Athena queries of schemas/athena_queries.sql over a local lake in
DuckDB, as Athena would over the Glue tables: `edgemeter.requests` and
`edgemeter.usage_hourly` are the lake's Delta tables read by the Python
`deltalake` package (delta-rs), nothing of edgemeter's.

    athena_queries.py LAKE QUERIES.sql

Prints {"<name>": [[api_key_id, requests, billable, client, server, out, in], ...]}
with each statement named by its `-- name:` comment line.
"""

import json
import os
import re
import sys

import duckdb
from deltalake import DeltaTable


def statements(text):
    """(name, sql) of each statement, named by the comment `-- name: ...` before it."""
    out, name, sql = [], None, []
    for line in text.splitlines():
        if line.startswith("--"):
            found = re.match(r"^-- (\w+):", line)
            if found and not sql:
                name = found.group(1)
            continue
        if line.strip():
            sql.append(line)
        if line.rstrip().endswith(";"):
            out.append((name, "\n".join(sql).rstrip().rstrip(";")))
            name, sql = None, []
    return out


def main():
    lake, queries = sys.argv[1], sys.argv[2]
    con = duckdb.connect()
    con.execute("CREATE SCHEMA edgemeter")
    for table in ["requests", "usage_hourly"]:
        data = DeltaTable(os.path.join(lake, table)).to_pyarrow_table()
        con.register(f"{table}_arrow", data)
        con.execute(f"CREATE VIEW edgemeter.{table} AS SELECT * FROM {table}_arrow")
    with open(queries) as f:
        text = f.read()
    result = {}
    for name, sql in statements(text):
        rows = con.execute(sql).fetchall()
        result[name] = [[r[0] or ""] + [int(v) for v in r[1:]] for r in rows]
    print(json.dumps(result))


main()
