"""The base of every config model: unknown keys are errors, not silently ignored.

(The validated names and digests the models use are in ``shared/primitives.py``.)
"""

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Rejects unknown keys and re-validates on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
