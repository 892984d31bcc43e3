#!/usr/bin/env python3
"""Prints the forward API's fixture request (an API Gateway HTTP API v2 event) with its event
timestamps moved to now, for `cargo lambda invoke forward-api --data-file <file>`.

    python3 scripts/local_request.py [--token <session token>]

The fixture's own token (session sess-123, local-only secret) is kept unless --token is given.

The fixture (lambdas/forward_api/fixtures/apigw-v2-forward.json) is pinned to 2026-01-01 for
the tests; the function checks client clocks against its own, so a local run needs fresh ones.
"""

import argparse
import json
import pathlib
import time

FIXTURE = pathlib.Path(__file__).resolve().parent.parent / "lambdas/forward_api/fixtures/apigw-v2-forward.json"
FIXTURE_NOW_MS = 1_767_225_600_000

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--token", help="a session token for the request's Authorization header")
args = parser.parse_args()

request = json.loads(FIXTURE.read_text())
if args.token:
    request["headers"]["authorization"] = f"Bearer {args.token}"
body = json.loads(request["body"])
shift = int(time.time() * 1000) - FIXTURE_NOW_MS
for event in body["events"]:
    ts = event.get("ts")
    if isinstance(ts, int):
        event["ts"] = ts + shift
    elif isinstance(ts, str):
        event["ts"] = FIXTURE_NOW_MS - 30_000 + shift  # the fixture's RFC 3339 ts is now - 30 s
request["body"] = json.dumps(body)
request["requestContext"]["timeEpoch"] = FIXTURE_NOW_MS + shift
print(json.dumps(request, indent=2))
