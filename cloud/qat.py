"""Quantisation-aware fine-tuning: a few epochs in which the network sees int8's rounding.

Post-training int8 changes 3–5% of a model's answers, and for the best float models more of
them wrongly than rightly (docs/training.md, "The refit's int8 loss"). No post-training lever
fixed that, so the last epochs train *through* the rounding instead: the same Keras model is
run by an interpreter of its graph that applies, where the int8 TFLite model rounds,

* the weights as the converter quantises them: each convolution's kernel with its (frozen)
  BatchNorm folded in, per output channel, symmetric, 127 steps a side;
* every activation the int8 model stores (the normalised input, each ReLU6, each linear
  projection, each residual sum, the pooled features, the logits) rounded to 256 steps of the
  range the converter's calibration would give it (the min and max over calibration images).

Gradients pass the rounding straight through (``tf.quantization.fake_quant_*``), and only
the model's own variables train, so the result is the ordinary float model with adjusted
weights: it is converted exactly like any other (the representative set still calibrates it)
and nothing downstream changes. ``tensorflow-model-optimization`` would do this for Keras 2
models, not for the Keras 3 models here.
"""

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..shared.config import TrainConfig
from ..shared.errors import RecyclopsError

logger = logging.getLogger(__name__)

Ranges = dict[str, tuple[float, float]]


class QatError(RecyclopsError):
    """The model has a layer the quantisation-aware graph does not know how to run."""


@dataclass
class _Mode:
    """How one pass treats the quantisation points."""

    kind: str  # "float" (none), "observe" (record ranges), "quant" (fake-quantise)
    training: bool = False
    ranges: Ranges = field(default_factory=dict)


class QatGraph:
    """A Keras functional model (nested models allowed) run with int8 rounding."""

    def __init__(self, model: Any) -> None:
        import keras

        self.model = model
        self._bn_of: dict[str, Any] = {}  # conv layer name -> its BatchNorm
        self._bn_relu: set[str] = set()  # BatchNorms whose output goes straight into a ReLU
        self._folded_bn: set[str] = set()
        for layer in _flatten(model):
            for node in layer._inbound_nodes:
                for parent in node.parent_nodes:
                    op = parent.operation
                    if isinstance(layer, keras.layers.BatchNormalization) and isinstance(
                        op, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
                    ):
                        self._bn_of[op.name] = layer
                        self._folded_bn.add(layer.name)
                    if isinstance(layer, keras.layers.ReLU) and isinstance(
                        op, keras.layers.BatchNormalization
                    ):
                        self._bn_relu.add(op.name)
        self.ranges: Ranges = {}

    # -- passes -----------------------------------------------------------------------
    def __call__(self, x: Any, *, training: bool = False, quantise: bool = True) -> Any:
        if quantise and not self.ranges:
            raise QatError("no activation ranges: observe() calibration images first")
        mode = _Mode("quant" if quantise else "float", training, self.ranges)
        return self._run(self.model, x, mode)

    def observe(self, batches: Iterator[np.ndarray]) -> Ranges:
        """The calibration's ranges: min and max of every quantisation point over the
        batches (the converter's min/max calibration), always including 0."""
        mode = _Mode("observe")
        for batch in batches:
            self._run(self.model, batch.astype(np.float32), mode)
        self.ranges = {k: (min(0.0, lo), max(0.0, hi)) for k, (lo, hi) in mode.ranges.items()}
        return self.ranges

    # -- the interpreter ----------------------------------------------------------------
    def _run(self, model: Any, x: Any, mode: _Mode) -> Any:
        return model._run_through_graph(x, operation_fn=lambda op: self._op(op, mode))

    def _op(self, op: Any, mode: _Mode) -> Callable[..., Any]:
        import keras

        def q(t: Any, name: str) -> Any:
            return _point(t, name, mode)

        if isinstance(op, keras.Model):
            return lambda inp, *a, **k: self._run(op, inp, mode)
        if isinstance(op, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            bn = self._bn_of.get(op.name)

            def conv(inp: Any, *a: Any, **k: Any) -> Any:
                out = _folded_conv(op, bn, inp, mode.kind == "quant")
                if bn is None or bn.name not in self._bn_relu:
                    out = q(out, op.name)
                return out

            return conv
        if isinstance(op, keras.layers.BatchNormalization):
            if op.name not in self._folded_bn:
                raise QatError(f"{op.name}: a BatchNorm not after a convolution")
            return lambda inp, *a, **k: inp
        if isinstance(op, keras.layers.Dense):
            return lambda inp, *a, **k: _dense(op, inp, mode, q)
        if isinstance(op, keras.layers.Dropout):
            return lambda inp, *a, **k: op(inp, training=mode.training)
        if isinstance(op, (keras.layers.ZeroPadding2D, keras.layers.InputLayer)):
            return op
        if isinstance(
            op,
            (
                keras.layers.ReLU,
                keras.layers.Add,
                keras.layers.Rescaling,
                keras.layers.GlobalAveragePooling2D,
            ),
        ):
            return lambda *a, **k: q(op(*a), op.name)
        raise QatError(f"{op.name}: {type(op).__name__} layers are not supported")


def _flatten(model: Any) -> Iterator[Any]:
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _flatten(layer)
        else:
            yield layer


def _point(t: Any, name: str, mode: _Mode) -> Any:
    """One activation the int8 model stores: record, round or pass it."""
    import tensorflow as tf

    if mode.kind == "observe":
        lo, hi = float(tf.reduce_min(t)), float(tf.reduce_max(t))
        old = mode.ranges.get(name)
        mode.ranges[name] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
        return t
    if mode.kind == "quant":
        lo, hi = mode.ranges[name]
        return tf.quantization.fake_quant_with_min_max_args(t, min=lo, max=hi, num_bits=8)
    return t


def _per_channel(w: Any) -> Any:
    """Symmetric per-output-channel int8 weights (the last axis), as the converter makes."""
    import tensorflow as tf

    axes = list(range(len(w.shape) - 1))
    m = tf.stop_gradient(tf.maximum(tf.reduce_max(tf.abs(w), axis=axes), 1e-8))
    return tf.quantization.fake_quant_with_min_max_vars_per_channel(
        w, -m, m, num_bits=8, narrow_range=True
    )


def _folded_conv(conv: Any, bn: Any, x: Any, quantise: bool) -> Any:
    """The convolution with its BatchNorm folded in: what the int8 model computes."""
    import keras
    import tensorflow as tf

    if tuple(conv.dilation_rate) != (1, 1) or getattr(conv, "groups", 1) != 1:
        raise QatError(f"{conv.name}: dilated or grouped convolutions are not supported")
    kernel = conv.kernel
    depthwise = isinstance(conv, keras.layers.DepthwiseConv2D)
    if bn is not None:
        scale = bn.gamma * tf.math.rsqrt(bn.moving_variance + bn.epsilon)
        shift = bn.beta - bn.moving_mean * scale
    else:
        channels = kernel.shape[2] * kernel.shape[3] if depthwise else kernel.shape[3]
        scale, shift = tf.ones([channels]), tf.zeros([channels])
    if conv.use_bias:
        shift = shift + conv.bias * scale
    stride = [1, *conv.strides, 1]
    padding = conv.padding.upper()
    if depthwise:
        h, w, cin, mult = kernel.shape
        k = tf.reshape(kernel, [h, w, cin * mult]) * scale
        if quantise:
            k = _per_channel(k)
        out = tf.nn.depthwise_conv2d(x, tf.reshape(k, [h, w, cin, mult]), stride, padding)
    else:
        k = kernel * scale
        if quantise:
            k = _per_channel(k)
        out = tf.nn.conv2d(x, k, stride, padding)
    out = out + shift
    return _activation(conv, out)


def _activation(layer: Any, out: Any) -> Any:
    act = getattr(layer, "activation", None)
    if act is None or getattr(act, "__name__", "") == "linear":
        return out
    raise QatError(f"{layer.name}: a fused activation is not supported; use a ReLU layer")


def _dense(dense: Any, x: Any, mode: _Mode, q: Callable[[Any, str], Any]) -> Any:
    """Logits rounded as the int8 model stores them, then the float softmax."""
    import tensorflow as tf

    kernel = _per_channel(dense.kernel) if mode.kind == "quant" else dense.kernel
    logits = q(tf.matmul(x, kernel) + dense.bias, dense.name)
    name = getattr(dense.activation, "__name__", "")
    if name == "softmax":
        return tf.nn.softmax(logits)
    if name == "linear":
        return logits
    raise QatError(f"{dense.name}: activation {name} is not supported")


def quantisation_aware(
    parts: Any,
    config: TrainConfig,
    data: Any,
    calibration: np.ndarray,
    verbose: int = 0,
) -> dict[str, Any]:
    """``config.qat_epochs`` epochs of the trained model through int8's rounding, on
    ``data``'s training pixels (live augmentation, class weights, label smoothing as the
    recipe), at the constant ``qat_learning_rate``. The ranges are the calibration images'
    (the converter's own calibration set); what trains is what fine-tuning trained (the
    upper base without its BatchNorm, and the head). The model's weights change in place."""
    import keras
    import tensorflow as tf

    from .augment import augmenter
    from .fit import pixel_dataset
    from .model import set_upper_trainable

    t0 = time.monotonic()
    set_upper_trainable(parts, config.fine_tune and config.fine_tune_epochs > 0)
    model = parts.full()
    graph = QatGraph(model)
    graph.observe(calibration[i : i + 32] for i in range(0, len(calibration), 32))
    variables = list(model.trainable_variables)
    weights = data.sample_weights(config.class_weights)
    batches = pixel_dataset(
        data.x_train,
        data.targets(),
        weights,
        config.batch_size,
        config.seed + 11,
        augmenter(config),
    )
    optimizer = keras.optimizers.Adam(config.qat_learning_rate)
    loss_fn = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)

    @tf.function(autograph=False)  # the interpreter's Python control flow is static
    def step(x: Any, y: Any, w: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = loss_fn(y, graph(x, training=True), sample_weight=w)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    losses = []
    start = [v.numpy() for v in variables]
    try:
        for epoch in range(config.qat_epochs):
            total, count = 0.0, 0
            for x, y, w in batches:
                total += float(step(x, y, w)) * int(x.shape[0])
                count += int(x.shape[0])
            losses.append(round(total / max(1, count), 4))
            if not math.isfinite(losses[-1]):
                for v, value in zip(variables, start, strict=True):
                    v.assign(value)
                raise QatError(
                    f"quantisation-aware epoch {epoch + 1}: the loss is {losses[-1]}; the "
                    "model's weights are put back as they were before the epochs "
                    f"(try a lower qat_learning_rate than {config.qat_learning_rate:g})"
                )
            if verbose:
                logger.info("quantisation-aware epoch %d: loss %.4f", epoch + 1, losses[-1])
    finally:
        set_upper_trainable(parts, False)
    seconds = time.monotonic() - t0
    logger.info(
        "quantisation-aware fine-tuning: %d epochs on %d images, %d tensors trained (%.0f s)",
        config.qat_epochs,
        len(data.y_train),
        len(variables),
        seconds,
    )
    return {
        "epochs": config.qat_epochs,
        "images": len(data.y_train),
        "learning_rate": config.qat_learning_rate,
        "loss": losses,
        "quantisation_points": len(graph.ranges),
        "seconds": round(seconds, 1),
    }
