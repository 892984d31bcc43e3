#!/usr/bin/env python3
"""Measures the forward function's start-up: the time from starting the release `bootstrap`
to its first `GET /2018-06-01/runtime/invocation/next` (the moment it is ready for a
request), median of 20 starts, against a local Lambda Runtime API stand-in (this script) and
moto for the two secrets it reads at start-up.

    scripts/startup.sh                  # builds the release binary if needed, runs this

or, with moto on PATH and a built binary:

    python3 scripts/startup.py path/to/bootstrap [starts]

Start-up waits on the emulator: the function reads three secret values (redaction key, signing
key current and previous) in one concurrent wave. So the script also measures that wave alone
(three concurrent GetSecretValue calls to the same moto, median of 20) and reports the
difference: what the function itself costs.
"""

import concurrent.futures
import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

REGION = "eu-west-1"
SESSION_SECRET = "eventfabric-dev-session-token-secret"
REDACTION_SECRET = "eventfabric-dev-redaction-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not listen on port {port} within 30 s")


def secrets_call(endpoint: str, target: str, body: dict) -> dict:
    """One Secrets Manager call in its JSON protocol (moto checks no signature)."""
    request = urllib.request.Request(
        endpoint,
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"secretsmanager.{target}",
            "Authorization": f"AWS4-HMAC-SHA256 Credential=test/20260101/{REGION}/secretsmanager/aws4_request",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    """The stand-in: notes when `next` is first asked for, and never hands out an event."""

    first_next: "float | None" = None
    ready = threading.Event()

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path.endswith("/runtime/invocation/next"):
            if RuntimeApi.first_next is None:
                RuntimeApi.first_next = time.perf_counter()
                RuntimeApi.ready.set()
            # Hold the connection as Lambda does until an event arrives; the process is killed.
            time.sleep(5)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    bootstrap = os.path.abspath(sys.argv[1])
    starts = int(sys.argv[2]) if len(sys.argv) > 2 else 20

    moto_port = free_port()
    moto = subprocess.Popen(
        ["moto_server", "-H", "127.0.0.1", "-p", str(moto_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(moto_port, "moto_server")
        endpoint = f"http://127.0.0.1:{moto_port}"
        for name in (SESSION_SECRET, REDACTION_SECRET):
            secrets_call(endpoint, "CreateSecret", {"Name": name, "SecretString": "x" * 64})

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        runtime_api = f"127.0.0.1:{server.server_address[1]}"

        env = {
            "PATH": os.environ.get("PATH", ""),
            "AWS_LAMBDA_RUNTIME_API": runtime_api,
            "AWS_LAMBDA_FUNCTION_NAME": "eventfabric-dev-forward-api",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_ENDPOINT_URL": endpoint,
            "SESSION_BUS_NAME": "eventfabric-dev-session",
            "SESSION_SECRET_ARN": SESSION_SECRET,
            "REDACTION_SECRET_ARN": REDACTION_SECRET,
            "STATE_TABLE_NAME": "eventfabric-dev-forward-state",
            "RUST_LOG": "warn",
        }
        ready_ms = []
        for _ in range(starts + 1):  # the first start warms the page cache; not counted
            RuntimeApi.first_next = None
            RuntimeApi.ready.clear()
            started = time.perf_counter()
            process = subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if not RuntimeApi.ready.wait(timeout=10):
                process.kill()
                _, err = process.communicate()
                sys.exit(f"the function never asked for an event:\n{err.decode(errors='replace')}")
            ready_ms.append((RuntimeApi.first_next - started) * 1000)
            process.kill()
            process.wait()
        ready_ms = ready_ms[1:]

        # The emulator's part: the same three reads, concurrently, as the function makes them.
        reads = [(REDACTION_SECRET, "AWSCURRENT"), (SESSION_SECRET, "AWSCURRENT"), (SESSION_SECRET, "AWSPREVIOUS")]

        def read(secret_and_stage):
            secret, stage = secret_and_stage
            try:
                secrets_call(endpoint, "GetSecretValue", {"SecretId": secret, "VersionStage": stage})
            except urllib.error.HTTPError:
                pass  # AWSPREVIOUS does not exist yet: an answer all the same

        wave_ms = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            for _ in range(starts + 1):
                t = time.perf_counter()
                list(pool.map(read, reads))
                wave_ms.append((time.perf_counter() - t) * 1000)
        wave_ms = wave_ms[1:]
        server.shutdown()
    finally:
        moto.kill()
        moto.wait()

    ready = statistics.median(ready_ms)
    wave = statistics.median(wave_ms)
    print(f"start-up of {os.path.relpath(bootstrap)} ({starts} starts):")
    print(f"  process start -> first GET /runtime/invocation/next: median {ready:.1f} ms "
          f"(min {min(ready_ms):.1f}, max {max(ready_ms):.1f})")
    print(f"  the emulator's answer to the start-up reads (3 concurrent GetSecretValue): median {wave:.1f} ms")
    print(f"  the function's own start-up: about {ready - wave:.1f} ms (target <= 15 ms)")


if __name__ == "__main__":
    main()
