#!/usr/bin/env python3
"""Other shapes of the same generated logs, for bench/shapes.sh.

  shapes.py split SRC OUT N       each file of SRC as N files of its hour
                                  (consecutive lines, the header on each), as a
                                  busy distribution delivers dozens an hour
  shapes.py late SRC OUT SHARE    for each file of SRC, a late file of the same
                                  hour with the first SHARE of its lines under
                                  new request ids: new requests into hours
                                  already committed

Same arguments, same bytes (gzip level 6, no timestamp in the header).
"""
import gzip
import os
import sys


def read(path):
    with gzip.open(path, "rt") as f:
        lines = f.read().splitlines(keepends=True)
    header = [l for l in lines if l.startswith("#")]
    return header, [l for l in lines if not l.startswith("#")]


def write(path, header, body):
    with open(path, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as f:
            f.write("".join(header + body).encode())


def main():
    mode, src, out, arg = sys.argv[1:5]
    os.makedirs(out, exist_ok=True)
    for name in sorted(os.listdir(src)):
        if not name.endswith(".gz"):
            continue
        header, body = read(os.path.join(src, name))
        stem = name[: -len(".gz")]
        if mode == "split":
            n = int(arg)
            size = -(-len(body) // n)
            for i in range(n):
                write(os.path.join(out, f"{stem}-{i:02d}.gz"), header, body[i * size:(i + 1) * size])
        elif mode == "late":
            take = body[: max(1, int(len(body) * float(arg)))]
            late = []
            for line in take:
                fields = line.split("\t")
                fields[14] = fields[14] + "late"  # x-edge-request-id
                late.append("\t".join(fields))
            write(os.path.join(out, f"{stem}-late.gz"), header, late)
        else:
            sys.exit(f"unknown mode {mode}")


main()
