"""Synthetic coloured-shape images: a learnable data set for tests, demos and benchmarks
when no real photos are at hand (one class per colour, random shapes and backgrounds)."""

import io

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (40, 70, 220),
    "yellow": (230, 210, 40),
    "purple": (150, 50, 190),
    "cyan": (40, 200, 210),
}


def shape_jpeg(colour: tuple[int, int, int], rng: np.random.Generator, size: int = 96) -> bytes:
    """One JPEG: a ``colour``-tinted background with a random grey ellipse or rectangle."""
    tint = tuple(
        int(np.clip(c * rng.uniform(0.7, 1.1) + rng.integers(-20, 21), 0, 255)) for c in colour
    )
    img = Image.new("RGB", (size, size), tint)
    draw = ImageDraw.Draw(img)
    x0, y0 = (int(v) for v in rng.integers(0, size // 2, 2))
    x1, y1 = (
        x0 + int(rng.integers(size // 5, size // 2)),
        y0 + int(rng.integers(size // 5, size // 2)),
    )
    grey = int(rng.integers(40, 220))
    fill = (grey, grey, grey)
    (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=fill)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=int(rng.integers(80, 96)))
    return buf.getvalue()


def shapes(
    categories: list[str], per_class: int, seed: int = 0, size: int = 96
) -> dict[str, list[bytes]]:
    """``per_class`` JPEGs for each category (colours assigned in order)."""
    rng = np.random.default_rng(seed)
    palette = list(COLOURS.values())
    return {
        c: [shape_jpeg(palette[i % len(palette)], rng, size) for _ in range(per_class)]
        for i, c in enumerate(categories)
    }
