"""The model card (markdown) and the confusion-matrix picture that goes with it."""

from pathlib import Path
from typing import Any

import numpy as np

from ..shared.manifest import ModelManifest
from .blessing import Verdict
from .evaluate import Scores


def confusion_png(confusion: list[list[int]], categories: list[str], title: str) -> bytes:
    """A confusion matrix as PNG bytes (matplotlib, no display needed)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.asarray(confusion)
    size = max(4.0, 0.6 * len(categories) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    rows = np.maximum(m.sum(axis=1, keepdims=True), 1)
    ax.imshow(m / rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(categories)), categories, rotation=45, ha="right")
    ax.set_yticks(range(len(categories)), categories)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(
                j,
                i,
                str(m[i, j]),
                ha="center",
                va="center",
                color="white" if m[i, j] > rows[i, 0] / 2 else "black",
            )
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _table(categories: list[str], fl: Scores, q: Scores) -> list[str]:
    lines = ["| class | test images | float | int8 |", "|---|---:|---:|---:|"]
    for c in categories:
        f, i = fl.per_class.get(c), q.per_class.get(c)
        fmt = lambda v: "–" if v is None else f"{v:.1%}"  # noqa: E731
        lines.append(f"| {c} | {fl.support.get(c, 0)} | {fmt(f)} | {fmt(i)} |")
    lines.append(
        f"| **all** | {sum(fl.support.values())} | **{fl.accuracy:.1%}** | **{q.accuracy:.1%}** |"
    )
    return lines


def _champion_table(champion: dict[str, Any] | None) -> list[str]:
    """The comparison with the champion, side by side on the shared test images."""
    if not champion or not champion.get("compared"):
        return []
    ov = champion["overall"]
    lines = [
        "",
        f"Compared with the champion {champion['version']} on {ov['images']} shared test "
        "images (paired, exact McNemar):",
        "",
        "| | champion | this model |",
        "|---|---:|---:|",
        f"| accuracy | {champion['champion']['accuracy']:.1%} | "
        f"{champion['challenger']['accuracy']:.1%} |",
        f"| images right only here | {ov['only_reference_right']} | {ov['only_new_right']} |",
        "",
        f"p (this model worse) = {ov['p_worse']:.3g}; p (this model better) = "
        f"{ov['p_better']:.3g}.",
    ]
    return lines


def _matrix(categories: list[str], confusion: list[list[int]]) -> list[str]:
    lines = [
        "| true \\ predicted | " + " | ".join(categories) + " |",
        "|---|" + "---:|" * len(categories),
    ]
    for name, row in zip(categories, confusion, strict=True):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    return lines


def model_card(
    manifest: ModelManifest,
    fl: Scores,
    q: Scores,
    verdict: Verdict,
    history: dict[str, Any],
    image_name: str | None,
) -> str:
    hp = manifest.hyperparameters
    lines = [
        f"# Recyclops model {manifest.version}",
        "",
        f"Created {manifest.created:%Y-%m-%d %H:%M UTC}. MobileNetV2 (alpha {hp.get('alpha')}, "
        f"weights {hp.get('weights')}) with a {len(manifest.categories)}-way softmax head.",
        "",
        "## Input",
        f"{manifest.input.height}x{manifest.input.width} RGB, {manifest.input.dtype} "
        f"(scale {manifest.input.scale}, zero point {manifest.input.zero_point}), resized "
        f"{manifest.input.resize} ({manifest.input.fit}) by `recyclops.shared.preprocess`. "
        "Normalisation to [-1, 1] is inside the model: feed raw pixels.",
        "",
        "## Data",
        f"{manifest.dataset.images} images, fingerprint `{manifest.dataset.fingerprint[:16]}`. "
        "Split by image hash (train/validation/test); test images were never trained on.",
        "",
        "| class | images |",
        "|---|---:|",
        *[f"| {k} | {v} |" for k, v in manifest.dataset.per_class.items()],
        "",
        "## Accuracy on the test split",
        *_table(manifest.categories, fl, q),
        "",
        "## Blessing (may it replace the model serving?)",
        "",
        "```",
        verdict.summary,
        "```",
        *_champion_table(verdict.record.get("champion")),
        "",
        "## Confusion matrix (int8, test split)",
        *_matrix(manifest.categories, q.confusion),
        "",
    ]
    if image_name:
        lines += [f"![confusion matrix]({image_name})", ""]
    lines += ["## Training", "", "| stage | epochs | best validation accuracy |", "|---|---:|---:|"]
    for st in history.get("stages", []):
        lines.append(f"| {st['stage']} | {st['epochs']} | {st['best_val_accuracy']:.1%} |")
    lines += [
        "",
        "## Hyperparameters",
        "",
        "```",
        *[f"{k} = {v!r}" for k, v in sorted(hp.items())],
        "```",
        "",
        "## Limits",
        "Trained on the operators' reviewed images only; accuracy on other bins, lighting "
        "or objects is unknown. Classes with few test images have noisy per-class figures.",
        "",
    ]
    return "\n".join(lines)


def write_confusion(
    path: Path, confusion: list[list[int]], categories: list[str], title: str
) -> Path:
    from ..shared.atomic import atomic_write_bytes

    atomic_write_bytes(path, confusion_png(confusion, categories, title))
    return path
