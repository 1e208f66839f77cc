"""Playwright for the browser tests: skipped on a machine without it, a failure in CI.

A skip is silent in a green run, so CI (``.ci/run``) sets ``RECYCLOPS_REQUIRE_BROWSER=1``
and a missing Playwright fails the browser tests there instead of passing without them.
"""

import os
from types import ModuleType

import pytest

REQUIRE_BROWSER = "RECYCLOPS_REQUIRE_BROWSER"


def browser_required() -> bool:
    return os.environ.get(REQUIRE_BROWSER, "") not in ("", "0")


def playwright_api() -> ModuleType:
    """``playwright.sync_api``; when it cannot be imported the test is skipped, or failed
    with ``RECYCLOPS_REQUIRE_BROWSER`` set."""
    try:
        import playwright.sync_api as api
    except ImportError as exc:
        why = f"Playwright cannot be imported ({exc}); `make install` installs it"
        if browser_required():
            pytest.fail(f"{why} ({REQUIRE_BROWSER} is set: the browser tests must run)", False)
        pytest.skip(f"{why} (set {REQUIRE_BROWSER}=1 to make this a failure)")
    return api
