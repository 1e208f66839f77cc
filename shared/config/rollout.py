"""Staged rollout settings: when ``recyclops promote`` may move a canary's model to the
stable channel, and when ``recyclops watch`` halts a canary that serves worse."""

from pydantic import Field, model_validator

from ..primitives import SafeName
from .base import StrictModel


class RolloutConfig(StrictModel):
    canary: SafeName = Field("canary", title="Channel that tries new models first")
    target: SafeName = Field("stable", title="Channel a proven canary model is promoted to")
    since_days: int = Field(
        7, ge=1, le=90, title="Days of telemetry compared (both channels, the same window)"
    )
    min_frames: int = Field(
        2000, ge=1, le=100_000_000, title="Promote: classified frames each side needs"
    )
    min_presses: int = Field(
        100,
        ge=1,
        le=10_000_000,
        title="Promote: operator presses with a prediction each side needs",
        description="The correction rate is corrections ÷ these presses.",
    )
    significance: float = Field(
        0.05,
        gt=0.0,
        lt=0.5,
        title="One-sided significance of 'worse beyond noise'",
        description="Fisher's exact test of the canary's rate against the target's.",
    )
    halt_margin: float = Field(
        0.03,
        ge=0.0,
        le=1.0,
        title="Watch: how much worse (absolute rate) halts a canary",
        description="A canary is halted only when a rate is worse beyond noise AND by more "
        "than this (0.03: three points of correction or low-confidence rate).",
    )
    halt_min_frames: int = Field(
        500, ge=1, le=100_000_000, title="Watch: frames each side needs to judge low confidence"
    )
    halt_min_presses: int = Field(
        30,
        ge=1,
        le=10_000_000,
        title="Watch: predicted presses each side needs to judge corrections",
    )
    watch_seconds: int = Field(
        900, ge=10, le=86_400, title="Watch without --once: seconds between checks"
    )

    @model_validator(mode="after")
    def _distinct(self) -> "RolloutConfig":
        if self.canary == self.target:
            raise ValueError("the canary and target channels must differ")
        return self
