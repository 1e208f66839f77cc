"""Find a TFLite interpreter: ai-edge-litert, then tflite-runtime, then TensorFlow (last).

The edge must run without TensorFlow: it is imported only here, only when nothing lighter is
installed (or when explicitly asked for).
"""

import importlib
import logging
from typing import Any

from ..shared.errors import RecyclopsError

logger = logging.getLogger(__name__)

#: (name, module, attribute) tried in order by "auto".
BACKENDS: tuple[tuple[str, str, str], ...] = (
    ("litert", "ai_edge_litert.interpreter", "Interpreter"),
    ("tflite_runtime", "tflite_runtime.interpreter", "Interpreter"),
    ("tensorflow", "tensorflow.lite.python.interpreter", "Interpreter"),
)


class NoInterpreterError(RecyclopsError):
    """No TFLite interpreter package is installed."""


def interpreter_class(backend: str = "auto") -> tuple[str, Any]:
    """The first importable interpreter class for ``backend`` ("auto" walks the chain)."""
    chain = BACKENDS if backend == "auto" else tuple(b for b in BACKENDS if b[0] == backend)
    if not chain:
        raise NoInterpreterError(f"unknown interpreter backend {backend!r}")
    errors: list[str] = []
    for name, module, attr in chain:
        try:
            return name, getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            errors.append(f"{name}: {exc}")
    raise NoInterpreterError(
        "no TFLite interpreter found (pip install ai-edge-litert, or tflite-runtime): "
        + "; ".join(errors)
    )


def make_interpreter(model_path: str, threads: int, backend: str = "auto") -> tuple[str, Any]:
    """Load a model into a fresh interpreter with tensors allocated."""
    name, cls = interpreter_class(backend)
    try:
        interp = cls(model_path=model_path, num_threads=threads)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise RecyclopsError(f"{model_path}: cannot load model ({name}): {exc}") from None
    logger.debug("loaded %s with %s (%d threads)", model_path, name, threads)
    return name, interp
