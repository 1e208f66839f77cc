"""TensorBoard extras: the HParams record of a run and the confusion-matrix image."""

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def _hparam_value(value: Any) -> Any:
    return value if isinstance(value, bool | int | float | str) else str(value)


def log_hparams(
    log_dir: Path,
    hparams: dict[str, Any],
    metrics: dict[str, float],
    png: bytes | None = None,
    trial_id: str | None = None,
) -> None:
    """One HParams session (all runs under one parent show in one table) plus the image."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        hp.hparams({k: _hparam_value(v) for k, v in hparams.items()}, trial_id=trial_id)
        for name, value in metrics.items():
            tf.summary.scalar(name, value, step=0)
        if png is not None:
            image = tf.expand_dims(tf.image.decode_png(png, channels=4), 0)
            tf.summary.image("confusion_matrix", image, step=0)
    writer.flush()
    writer.close()
