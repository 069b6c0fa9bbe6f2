#!/usr/bin/env python3
"""The official Python SDK's retry handler against gcemu's Retry-After, read back from the journal.

Usage: retry_handler.py BASE_URL   (or GCEMU_URL=http://127.0.0.1:5080 retry_handler.py)

A fault rule (POST /_emulator/faults) answers the next GET of a connection 429 with Retry-After: 2.
One typed msgraph-sdk call (GET /external/connections/{id}) must succeed through the SDK's default
RetryHandler. The request journal (GET /_emulator/requests) must show the 429 and, at least 2 s later
(gcemu's journal uses the emulator clock, which follows wall time unless advanced), the retry
answered 200; and the connector report (GET /_emulator/report) must have no retryBeforeRetryAfter or
retryStorm finding for the connection. Only the control-plane calls use httpx directly. Prints one
line per step; exits 1 on the first failure (after deleting the connection and any unfired rule).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import traceback
import uuid
from typing import Optional
from urllib.parse import urlparse

import httpx
from kiota_abstractions.authentication import BaseBearerTokenAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.external_connectors.external_connection import ExternalConnection

from harness import CheckFailed, EmulatorTokenProvider, check, utc

RETRY_AFTER_SECONDS = 2


class RetryRun:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.host = urlparse(self.base).hostname or "127.0.0.1"
        self.conn_id = f"pyretry{uuid.uuid4().hex[:10]}"
        self.http = httpx.AsyncClient(base_url=self.base, timeout=30)
        self.rule_id: Optional[str] = None
        self.created = False
        self.steps = 0

    def ok(self, what: str) -> None:
        self.steps += 1
        print(f"ok   {self.steps:2d} {what}", flush=True)

    async def client(self) -> GraphServiceClient:
        r = await self.http.post("/_emulator/token", json={})
        check(r.status_code == 200, f"POST /_emulator/token: {r.status_code} {r.text}")
        provider = EmulatorTokenProvider(r.json()["access_token"], self.host)
        adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(provider))
        adapter.base_url = f"{self.base}/v1.0"
        return GraphServiceClient(request_adapter=adapter)

    async def main(self) -> None:
        graph = await self.client()
        await graph.external.connections.post(
            ExternalConnection(id=self.conn_id, name="Python retry handler", description="retry_handler.py")
        )
        self.created = True
        self.ok(f"connection {self.conn_id} created through the SDK")

        path = f"/v1.0/external/connections/{self.conn_id}"
        rule = {
            "method": "GET",
            "path": "/v1.0/external/connections/*",
            "status": 429,
            "retryAfterSeconds": RETRY_AFTER_SECONDS,
            "count": 1,
        }
        r = await self.http.post("/_emulator/faults", json=rule)
        check(r.status_code == 201, f"POST /_emulator/faults: {r.status_code} {r.text}")
        self.rule_id = r.json()["id"]
        self.ok(f"fault rule {self.rule_id}: the next GET of a connection gets 429, Retry-After {RETRY_AFTER_SECONDS}")

        started = time.monotonic()
        connection = await graph.external.connections.by_external_connection_id(self.conn_id).get()
        elapsed = time.monotonic() - started
        check(connection is not None and connection.id == self.conn_id, f"GET {path} through the SDK: {connection!r}")
        check(elapsed >= RETRY_AFTER_SECONDS, f"the SDK call took {elapsed:.2f} s, less than Retry-After")
        self.ok(f"one SDK call: retried by RetryHandler and succeeded after {elapsed:.2f} s")

        r = await self.http.get("/_emulator/faults")
        fired = [rule for rule in r.json()["value"] if rule["id"] == self.rule_id]
        check(fired and fired[0]["fired"] == 1, f"the fault rule fired once: {fired}")

        r = await self.http.get("/_emulator/requests", params={"method": "GET", "pathPrefix": path})
        check(r.status_code == 200, f"GET /_emulator/requests: {r.status_code}")
        entries = [entry for entry in r.json()["value"] if entry["path"] == path]
        statuses = [entry["status"] for entry in entries]
        check(statuses == [429, 200], f"journal of GET {path}: statuses {statuses}, expected [429, 200]")
        throttled, retried = entries
        check(throttled.get("retryAfterSeconds") == RETRY_AFTER_SECONDS, f"the 429's Retry-After: {throttled}")
        check(throttled.get("fault") == self.rule_id, f"the 429 names the rule: {throttled}")
        waited = (utc(retried["time"]) - utc(throttled["time"])).total_seconds()
        check(waited >= RETRY_AFTER_SECONDS, f"the retry came {waited:.3f} s after the 429, sooner than {RETRY_AFTER_SECONDS} s")
        self.ok(f"journal: 429 at {throttled['time']}, retry 200 at {retried['time']} ({waited:.3f} s later)")

        r = await self.http.get("/_emulator/report")
        check(r.status_code == 200, f"GET /_emulator/report: {r.status_code} {r.text}")
        retries = [
            finding
            for finding in r.json()["findings"]
            if finding["code"] in ("retryBeforeRetryAfter", "retryStorm")
            and (finding.get("connectionId") == self.conn_id or self.conn_id in finding["message"])
        ]
        check(not retries, f"the report finds early retries: {retries}")
        self.ok("report: no retryBeforeRetryAfter or retryStorm finding for the connection")

    async def cleanup(self) -> None:
        try:
            if self.rule_id:
                await self.http.delete(f"/_emulator/faults/{self.rule_id}")
            if self.created:
                await self.http.delete(f"/v1.0/external/connections/{self.conn_id}")
        finally:
            await self.http.aclose()


def main() -> int:
    base = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("GCEMU_URL", "")
    if not base:
        print("usage: retry_handler.py BASE_URL   (or set GCEMU_URL)", file=sys.stderr)
        return 2

    async def run() -> None:
        retry = RetryRun(base)
        try:
            await retry.main()
        finally:
            await retry.cleanup()

    try:
        asyncio.run(run())
    except Exception as e:
        print(f"FAIL {type(e).__name__}: {e}", flush=True)
        if not isinstance(e, CheckFailed):
            traceback.print_exc()
        return 1
    print("retry_handler.py: all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
