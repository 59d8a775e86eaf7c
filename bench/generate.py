#!/usr/bin/env python3
"""Deterministic CloudFront standard logs (33 fields) for the benchmark.

Usage: generate.py OUT_DIR [--files 48] [--lines 50000] [--keys 2000] [--seed 1]

Keys follow a Zipf-like skew (a few heavy customers, a long tail), statuses a
realistic mix (mostly 2xx, some 3xx/4xx/5xx/000), about 8% of requests carry no
key, and paths hold ids that the endpoint templates fold. Same arguments, same
bytes.
"""
import argparse
import gzip
import os
import random

HEADER = (
    "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem "
    "sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id "
    "x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher "
    "x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port "
    "time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end\n"
)
STATUSES = ["200"] * 80 + ["201"] * 4 + ["204"] * 2 + ["304"] * 4 + ["400", "401", "403", "404", "404", "429", "429"] + ["500", "502", "503"] + ["000"]
EDGES = ["SFO53-P9", "IAD89-C1", "FRA56-P4", "NRT57-C2", "GRU3-C1", "SIN2-P1"]
PATHS = ["/v1/users/{n}", "/v1/users/{n}/orders", "/v1/search", "/v1/reports/{u}", "/v2/items/{n}", "/health"]
AGENTS = ["curl/8.7.1", "python-requests/2.32.3", "Go-http-client/2.0", "okhttp/4.12.0"]
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--files", type=int, default=48)
    ap.add_argument("--lines", type=int, default=50_000)
    ap.add_argument("--keys", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    keys = [f"ak_live_{i:06d}_{rng.getrandbits(48):012x}" for i in range(args.keys)]
    weights = [1.0 / (i + 1) ** 1.1 for i in range(args.keys)]
    os.makedirs(args.out, exist_ok=True)
    for f in range(args.files):
        day, hour = 1 + f // 24, f % 24
        date = f"2025-10-{day:02d}"
        name = os.path.join(args.out, f"E2BENCH.{date}-{hour:02d}.{f:08x}.gz")
        lines = [HEADER]
        for i in range(args.lines):
            key = rng.choices(keys, weights)[0] if rng.random() > 0.08 else None
            query = f"api_key={key}&page={i % 7}" if key else "page=1"
            path = rng.choice(PATHS).format(n=rng.randrange(1, 10**6), u=f"{rng.getrandbits(128):032x}")
            status = rng.choice(STATUSES)
            sc = rng.randrange(200, 60_000)
            rid = "".join(rng.choice(ALPHABET) for _ in range(52)) + "=="
            t = rng.random() * 0.4
            sec = i * 3600 // args.lines
            lines.append(
                f"{date}\t{hour:02d}:{sec // 60:02d}:{sec % 60:02d}\t{rng.choice(EDGES)}\t{sc}\t198.51.100.{i % 250}\t"
                f"{rng.choice(['GET', 'POST'])}\td3o60fb1dwgq5k.cloudfront.net\t{path}\t{status}\t-\t{rng.choice(AGENTS)}\t"
                f"{query}\t-\tMiss\t{rid}\tapi.example.com\thttps\t{rng.randrange(80, 900)}\t{t:.3f}\t-\tTLSv1.3\t"
                f"TLS_AES_128_GCM_SHA256\tMiss\tHTTP/2.0\t-\t-\t{rng.randrange(1024, 65535)}\t{t * 0.7:.3f}\tMiss\t"
                f"application/json\t{max(sc - 180, 0)}\t-\t-\n"
            )
        with gzip.open(name, "wt", compresslevel=6) as out:
            out.write("".join(lines))


if __name__ == "__main__":
    main()
