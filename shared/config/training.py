"""Training, search and publishing settings for the cloud jobs."""

from pydantic import Field

from .base import SafeName, StrictModel


class TrainConfig(StrictModel):
    epochs: int = Field(20, ge=1, le=1000, title="Epochs")
    batch_size: int = Field(32, ge=1, le=1024, title="Batch size")
    dropout: float = Field(0.2, ge=0.0, lt=1.0, title="Dropout")
    optimizer: str = Field("adam", title="Optimizer")
    learning_rate: float = Field(1e-3, gt=0, le=1.0, title="Learning rate")
    image_size: int = Field(224, ge=32, le=1024, title="Input size (square)")
    seed: int = Field(1337, title="Seed")
    channel: SafeName = Field("stable", title="Channel to publish to")


class SearchConfig(StrictModel):
    pass
