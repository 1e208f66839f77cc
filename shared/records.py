"""Gathered records: a key press on a bin, its undo, and a frame the bin kept by itself.

(Review decisions and their journals are ``shared/journals.py``.)
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from .config.base import StrictModel
from .primitives import SafeName, Sha256Hex


class _ShaModel(StrictModel):
    sha256: Sha256Hex = Field(title="Image sha256")


#: Why a bin captured a frame by itself.
CaptureReason = Literal["low_score", "small_margin", "window_disagrees"]


class AutoCapture(StrictModel):
    """Why a bin kept a frame nobody pressed a key for: the model was unsure of it."""

    reasons: list[CaptureReason] = Field(min_length=1)
    scores: dict[str, float] = Field(title="The frame's class probabilities")
    top1: float = Field(ge=0.0, le=1.0)
    margin: float = Field(ge=0.0, le=1.0, title="Top-1 minus top-2 probability")
    window: list[str] = Field(default_factory=list, title="Per-frame labels of the window")


class GatheredRecord(_ShaModel):
    """One key press on a bin (or, with ``capture``, a frame the bin kept by itself because the
    model was unsure: ``label`` is then the model's own top-1, not an operator's)."""

    schema_version: Literal[1] = 1
    label: str = Field(title="Label pressed")
    device: SafeName
    captured_at: datetime
    model_version: str | None = None
    prediction: str | None = None
    score: float | None = Field(None, ge=0.0, le=1.0)
    width: int | None = Field(None, ge=1)
    height: int | None = Field(None, ge=1)
    capture: AutoCapture | None = Field(None, title="Set on automatic captures only")

    @property
    def auto(self) -> bool:
        return self.capture is not None

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        """Operator records stay byte-identical to the format before automatic captures."""
        data = handler(self)
        if isinstance(data, dict) and data.get("capture") is None:
            data.pop("capture", None)
        return data


class GatheredUndo(_ShaModel):
    """Withdraws the record of ``device`` with this sha and ``captured_at`` (which names it)."""

    schema_version: Literal[1] = 1
    device: SafeName
    captured_at: datetime = Field(title="Capture time of the gather undone")
    undone_at: datetime
