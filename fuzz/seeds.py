#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets from the bundled sample logs.

Every seed carries the keys of `edgemeter::fuzz::KEYS` in the places a key is
found or must be redacted. The first byte of an object seed picks the format
(0: detected, 1: real-time records of every field). Run from the repository
root: python3 fuzz/seeds.py
"""
import gzip
import json
import pathlib

LONG, SHORT = "fz0live0key0abcdefgh0123", "fzshort9"
root = pathlib.Path(__file__).resolve().parent.parent
fixtures = root / "tests" / "fixtures" / "cloudfront"
out = root / "fuzz" / "corpus" / "object"
out.mkdir(parents=True, exist_ok=True)


def seed(name, data, realtime=False):
    if isinstance(data, str):
        data = data.encode()
    (out / name).write_bytes(bytes([1 if realtime else 0]) + data)


std = (fixtures / "standard-2025-33.log").read_text()
header, first = std.splitlines()[1], std.splitlines()[2]
names = header[len("#Fields: "):].split(" ")
base = first.split("\t")


def line(**values):
    fields = list(base)
    for name, value in values.items():
        fields[names.index(name)] = value
    return "\t".join(fields)


lines = [
    line(**{"cs-uri-query": f"api_key={LONG}&x=1"}),
    line(**{"cs-uri-query": f"a=1;API_KEY={SHORT};b=2", "cs(Referer)": f"https://app.example/?api_key={SHORT}"}),
    line(**{"cs(Cookie)": f"session=1;%20api_key={LONG}", "cs(User-Agent)": f"client/{LONG}"}),
    line(**{"cs-uri-stem": f"/v1/x;api_key={LONG}/y", "cs-uri-query": "-"}),
    line(**{"cs-uri-query": f"api_key={LONG}&api_key=junk0000", "sc-status": "403"}),
    line(**{"c-port": "0.049", "sc-content-len": "570129.76", "cs-uri-query": f"api_key={LONG}"}),
    line(**{"date": "0000-01-01", "cs-uri-query": f"api_key={SHORT}"}),
    line(**{"date": "9999-12-31", "cs-uri-query": f"api_key={SHORT}"}),
    line(**{"sc-status": "000", "cs-uri-query": f"api_key%3D{LONG}"}),
    line(**{"cs-uri-query": f"api_key={LONG.replace('live', '%2525')}"}),
]
text = "#Version: 1.0\n" + header + "\n" + "\n".join(lines) + "\n"
seed("standard-keys.log", text)
seed("standard-keys.gz", gzip.compress(text.encode()) + gzip.compress(("\n".join(lines[:3]) + "\n").encode()))
seed("standard-extra-field.log", "#Version: 1.0\n" + header + "\n" + lines[0] + "\textra\tvalues\n" + lines[1][:40] + "\n")

# v2 W3C with headers and log data.
v2_names = ["date", "time", "sc-status", "cs-uri-stem", "cs-uri-query", "cs-headers", "viewer-request-log-data", "sc-bytes", "cs(Referer)"]
v2 = [
    ["2025-10-05", "01:06:21", "200", "/data", "-", f"User-Agent:x%0AX-Api-Key:{LONG}%0ACookie:api_key={SHORT}%0AReferer:https://r.example/?k={LONG}", "-", "611", "-"],
    ["2025-10-05", "01:06:22", "200", "/data", f"api_key={SHORT}", "-", f"api_key={LONG}&plan=pro", "12", "-"],
    ["2025-10-05", "01:06:23", "204", "/data", "-", f"Authorization:Bearer%20{LONG}", "-", "-", f"https://x.example/{LONG}"],
]
seed("v2-headers.log", "#Fields: " + " ".join(v2_names) + "\n" + "".join("\t".join(r) + "\n" for r in v2))
seed("v2-json.log", "".join(json.dumps(dict(zip([n.replace("cs(Referer)", "cs-referer") for n in v2_names], r))) + "\n" for r in v2))

# Real-time records of every field, in AWS's canonical order.
rt = (fixtures / "realtime-2025-44.log").read_text()
seed("realtime.log", rt.replace("EXAMPLEKEYEXAMPLEKEYEXAMPLEKEYEXAMPLEKEY", LONG), realtime=True)
seed("realtime-as-standard.log", rt.replace("EXAMPLEKEYEXAMPLEKEYEXAMPLEKEYEXAMPLEKEY", SHORT))

plans = root / "fuzz" / "corpus" / "plans"
plans.mkdir(parents=True, exist_ok=True)
# The README's full plans file, with the long key among the customer's keys.
readme = (root / "README.md").read_text()
toml = readme.split("A full `plans.toml`:\n\n```toml\n", 1)[1].split("```", 1)[0]
(plans / "readme.toml").write_text(toml.replace("ak_live_…", LONG))
