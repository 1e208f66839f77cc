"""The base of every config model: unknown keys are errors, not silently ignored."""

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from ..hashing import is_sha256

SAFE_SEGMENT = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_SAFE_RE = re.compile(SAFE_SEGMENT)

#: A name that is safe as one segment of an object key or a folder name.
SafeName = Annotated[str, StringConstraints(pattern=SAFE_SEGMENT)]


def _check_sha256(value: str) -> str:
    if not is_sha256(value):
        raise ValueError("must be a lowercase sha256 hex digest")
    return value


#: A lowercase sha256 hex digest (image ids, file and manifest hashes).
Sha256Hex = Annotated[str, AfterValidator(_check_sha256)]


def is_safe_segment(text: str) -> bool:
    return bool(_SAFE_RE.match(text)) and ".." not in text


class StrictModel(BaseModel):
    """Rejects unknown keys and re-validates on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
