"""An independent reader of an edgemeter lake: the Python `deltalake` package
(delta-rs) with pyarrow, nothing of edgemeter's.

    delta_totals.py LAKE            per-key totals of `requests`, as JSON
    delta_totals.py LAKE --watch F  read again and again until F exists;
                                    print one JSON line per read
    delta_totals.py LAKE --files [TABLE]
                                    the data files of the newest version
                                    of TABLE (default requests)
    delta_totals.py LAKE --rollup TABLE
                                    the same per-key totals summed from a
                                    rollup table (usage_hourly,
                                    usage_hourly_keys, usage_daily,
                                    usage_daily_keys or usage_daily_totals)
                                    as any Delta reader
                                    sees it, every current file counted

Each read replays the Delta log of `LAKE/requests` at its newest version and
sums the rows per `api_key_id`: requests, billable (2xx) requests, bytes out.
It also counts request ids seen more than once, which must always be 0.
"""

import json
import os
import sys
import time

from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError


def totals(lake):
    try:
        table = DeltaTable(os.path.join(lake, "requests"))
    except TableNotFoundError:
        return {"version": None, "keys": {}, "repeated_ids": 0, "rows": 0}
    data = table.to_pyarrow_table(
        columns=["api_key_id", "sc_status", "sc_bytes", "x_edge_request_id"]
    ).to_pydict()
    keys = {}
    for key, status, sent in zip(data["api_key_id"], data["sc_status"], data["sc_bytes"]):
        entry = keys.setdefault(key if key is not None else "", [0, 0, 0])
        entry[0] += 1
        if status is not None and 200 <= status < 300:
            entry[1] += 1
        entry[2] += sent or 0
    ids = [i for i in data["x_edge_request_id"] if i is not None]
    return {
        "version": table.version(),
        "keys": keys,
        "repeated_ids": len(ids) - len(set(ids)),
        "rows": len(data["api_key_id"]),
    }


def rollup_totals(lake, name):
    table = DeltaTable(os.path.join(lake, name))
    data = table.to_pyarrow_table(
        columns=["api_key_id", "sc_status", "requests", "bytes_out"]
    ).to_pydict()
    keys = {}
    for key, status, n, sent in zip(
        data["api_key_id"], data["sc_status"], data["requests"], data["bytes_out"]
    ):
        entry = keys.setdefault(key if key is not None else "", [0, 0, 0])
        entry[0] += n
        if status is not None and 200 <= status < 300:
            entry[1] += n
        entry[2] += sent
    return {
        "version": table.version(),
        "keys": keys,
        "repeated_ids": 0,
        "rows": len(data["api_key_id"]),
    }


def main():
    lake = sys.argv[1]
    if len(sys.argv) in (3, 4) and sys.argv[2] == "--files":
        root = os.path.join(lake, sys.argv[3] if len(sys.argv) == 4 else "requests")
        table = DeltaTable(root)
        prefix = os.path.abspath(root).rstrip("/") + "/"
        files = [u.split(prefix, 1)[-1] for u in table.file_uris()]
        print(json.dumps(sorted(files)))
        return
    if len(sys.argv) == 4 and sys.argv[2] == "--rollup":
        print(json.dumps(rollup_totals(lake, sys.argv[3])))
        return
    if len(sys.argv) == 4 and sys.argv[2] == "--watch":
        stop = sys.argv[3]
        while not os.path.exists(stop):
            try:
                print(json.dumps(totals(lake)), flush=True)
            except Exception as e:  # a read may race a vacuum; report it
                print(json.dumps({"error": str(e)}), flush=True)
            time.sleep(0.05)
        return
    print(json.dumps(totals(lake)))


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    # The deltalake package's runtime aborts at interpreter exit
    # ("terminate called without an active exception"): leave at once.
    os._exit(0)
