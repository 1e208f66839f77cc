"""Validated primitives: the names and digests every key, record, message and config uses.

One definition each, so a device id accepted by the config is exactly a device id the
store layout, the gathered records and the MQTT topics accept.
"""

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

SAFE_SEGMENT = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_SAFE_RE = re.compile(SAFE_SEGMENT)

#: A name that is safe as one segment of an object key or a folder name.
SafeName = Annotated[str, StringConstraints(pattern=SAFE_SEGMENT)]


def is_safe_segment(text: str) -> bool:
    return bool(_SAFE_RE.fullmatch(text)) and ".." not in text  # fullmatch: "$" allows "\n"


_SHA256 = re.compile(r"[0-9a-f]{64}")  # fullmatch: no trailing newline slips through


def is_sha256(text: str) -> bool:
    """A lowercase sha256 hex digest (64 characters)."""
    return _SHA256.fullmatch(text) is not None


def _check_sha256(value: str) -> str:
    if not is_sha256(value):
        raise ValueError("must be a lowercase sha256 hex digest")
    return value


#: A lowercase sha256 hex digest (image ids, file and manifest hashes).
Sha256Hex = Annotated[str, AfterValidator(_check_sha256)]
