"""What the Python client tests share: checks, the step runner and its summary lines, the cleanup line,
azure-identity's quieting, and the token provider for `POST /_emulator/token`.

Used by connector_life.py, retry_handler.py and strict_identity.py (next to this file), and by
../proxy/connector.py (which puts this folder on sys.path). Nothing here talks to gcemu by itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import traceback
import warnings
from typing import Any, Awaitable, Callable, Optional

from kiota_abstractions.authentication import AccessTokenProvider, AllowedHostsValidator

GRAPH_AUDIENCES = ("https://graph.microsoft.com", "https://graph.microsoft.com/", "00000003-0000-0000-c000-000000000000")


def quiet_azure_identity() -> None:
    """azure-identity logs each failed get_token at WARNING; the tests' expected failures would print a
    warning each through logging's last-resort handler, so their steps report exceptions instead.
    UsernamePasswordCredential and MSAL's password grant are deprecated (no MFA); the tests sign users
    in with them on purpose."""
    logging.getLogger("azure.identity").addHandler(logging.NullHandler())
    logging.getLogger("azure.identity").propagate = False
    warnings.filterwarnings("ignore", category=DeprecationWarning)


class CheckFailed(Exception):
    pass


def check(condition: bool, what: str) -> None:
    if not condition:
        raise CheckFailed(what)


def eq(actual: Any, expected: Any, what: str) -> None:
    if actual != expected:
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


class Run:
    """Runs steps, printing `ok   N name (detail) [ms]` or `FAIL N name: error` (then re-raising).
    `describe` words the error of a failed step."""

    def __init__(self, describe: Callable[[BaseException], str] = _describe) -> None:
        self.describe = describe
        self.steps = 0  # steps started, the failed one included
        self.passed = 0
        self.failed = 0

    async def step(self, name: str, body: Callable[[], Awaitable[Optional[str]]]) -> None:
        self.steps += 1
        started = time.monotonic()
        try:
            detail = await body()
        except Exception as e:
            self.failed += 1
            print(f"FAIL {self.steps:2d} {name}: {self.describe(e)}", flush=True)
            if not isinstance(e, CheckFailed):
                traceback.print_exc()
            raise
        self.passed += 1
        ms = (time.monotonic() - started) * 1000
        print(f"ok   {self.steps:2d} {name}{' (' + detail + ')' if detail else ''} [{ms:.0f} ms]", flush=True)


def run_to_summary(main: Callable[[], Awaitable[None]], run: Run) -> int:
    """asyncio.run(main()), then `PASSED: N steps in S s` (0) or `FAILED after N step(s)` (1)."""
    started = time.monotonic()
    try:
        asyncio.run(main())
    except Exception:
        print(f"FAILED after {run.steps} step(s)", flush=True)
        return 1
    print(f"PASSED: {run.steps} steps in {time.monotonic() - started:.1f} s", flush=True)
    return 0


def print_cleanup(problems: list[str]) -> None:
    print(f"cleanup: {'ok' if not problems else 'problems: ' + '; '.join(problems)}", flush=True)


class EmulatorTokenProvider(AccessTokenProvider):
    """Hands the SDK a bearer token minted by gcemu's `POST /_emulator/token`."""

    def __init__(self, token: str, host: str) -> None:
        self._token = token
        self._validator = AllowedHostsValidator([host])

    async def get_authorization_token(self, uri: str, additional_authentication_context: dict[str, Any] = {}) -> str:
        return self._token if self._validator.is_url_host_valid(uri) else ""

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self._validator
