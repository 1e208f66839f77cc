"""Edge daemon settings (camera, classifier, keypad, spool, updates)."""

from pydantic import Field

from .base import SafeName, StrictModel


class EdgeConfig(StrictModel):
    device_id: SafeName = Field("bin-01", title="Device id", description="Names this bin.")
    channel: SafeName = Field("stable", title="Model channel to follow")
    model_dir: str = Field("/var/lib/recyclops/models", title="Installed models")
    spool_dir: str = Field("/var/lib/recyclops/spool", title="Upload spool")
