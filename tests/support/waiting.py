"""One way for tests to wait: poll a predicate until it holds, then go on with its value.

Hand-written ``while time.monotonic() < deadline`` loops each had their own step, their own
timeout message (or none: the assertion after the loop failed without saying what was
awaited). ``wait_until`` names what it waited for and the last value it saw, so a timeout in
CI says which condition never came and how far it got.
"""

import inspect
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

FIRST_STEP = 0.005  # a condition that is nearly there costs a few milliseconds, not 50
MAX_STEP = 0.1  # and a slow one is still looked at ten times a second


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 15.0,
    what: str | None = None,
    *,
    max_step: float = MAX_STEP,
) -> T:
    """Call ``predicate`` until it returns something truthy and return that; after
    ``timeout`` seconds fail the test with ``what`` (default: the predicate's source) and the
    last value seen. Exceptions from the predicate propagate: a broken check is a failure,
    not something to wait out. A smaller ``max_step`` is for acting on the moment the
    condition starts to hold (a kill that must land mid-way)."""
    deadline = time.monotonic() + timeout
    step = FIRST_STEP
    while True:
        value = predicate()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(step, left))
        step = min(max_step, step * 2)
    raise AssertionError(
        f"timed out after {timeout:g}s waiting for {what or describe(predicate)}; "
        f"last value: {value!r:.500}"
    )


def describe(predicate: Callable[..., object]) -> str:
    """The predicate's own source line (a lambda reads as its condition), else its name."""
    try:
        source = inspect.getsource(predicate).strip()
    except (OSError, TypeError):
        return getattr(predicate, "__qualname__", repr(predicate))
    return " ".join(source.split())[:300]
