"""Issue 13, items 1-2: every image mode decodes to the right 8-bit pixels or is refused, and a
decompression bomb is one image's problem, never a crash."""

import io

import numpy as np
import pytest
from PIL import Image

from recyclops.shared.errors import ImageError
from recyclops.shared.preprocess import decode_rgb


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def gradient16(h: int = 40, w: int = 64) -> np.ndarray:
    """A real 16-bit photo-like ramp over the full 0..65535 range."""
    ramp = np.linspace(0, 65535, w).round().astype(np.uint16)
    return np.tile(ramp, (h, 1))


def test_16_bit_grayscale_png_keeps_its_picture() -> None:
    raw = gradient16()
    data = _png(Image.fromarray(raw))
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")  # really a 16-bit PNG
    rgb = decode_rgb(data, "images/x.jpg")
    assert rgb.shape == (40, 64, 3) and rgb.dtype == np.uint8
    expected = np.round(raw.astype(float) * 255 / 65535)
    assert np.abs(rgb[:, :, 0].astype(float) - expected).max() <= 1
    assert (rgb[:, :, 0] == rgb[:, :, 1]).all() and (rgb[:, :, 1] == rgb[:, :, 2]).all()
    assert rgb.min() == 0 and rgb.max() == 255 and len(np.unique(rgb)) > 60  # not solid white


def test_16_bit_dark_image_is_not_stretched_or_clipped() -> None:
    raw = np.full((8, 8), 0x4000, np.uint16)  # a quarter of full scale
    assert (decode_rgb(_png(Image.fromarray(raw))) == 64).all()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: Image.new("CMYK", (4, 4), (0, 255, 0, 0)), (255, 0, 255)),
        (lambda: Image.new("L", (4, 4), 77), (77, 77, 77)),
        (lambda: Image.new("1", (4, 4), 1), (255, 255, 255)),
        (lambda: Image.new("P", (4, 4), 0).convert("RGB").convert("P"), (0, 0, 0)),
        (lambda: Image.new("LA", (4, 4), (10, 255)), (10, 10, 10)),
        (lambda: Image.new("LA", (4, 4), (10, 0)), (255, 255, 255)),  # transparent: white
        (lambda: Image.new("RGBA", (4, 4), (200, 10, 20, 255)), (200, 10, 20)),
    ],
)
def test_other_modes_convert_to_rgb(make, expected) -> None:  # type: ignore[no-untyped-def]
    img = make()
    fmt = "JPEG" if img.mode == "CMYK" else "PNG"
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": 100} if fmt == "JPEG" else {}))
    rgb = decode_rgb(buf.getvalue())
    assert rgb.shape == (4, 4, 3)
    assert np.abs(rgb[0, 0].astype(int) - np.array(expected)).max() <= 3


def test_float_and_out_of_range_integer_images_are_refused_or_scaled() -> None:
    buf = io.BytesIO()
    Image.fromarray(np.full((4, 4), 0.5, np.float32), "F").save(buf, "TIFF")
    assert (decode_rgb(buf.getvalue()) == 128).all()
    buf = io.BytesIO()
    Image.fromarray(np.full((4, 4), 7.5, np.float32), "F").save(buf, "TIFF")
    with pytest.raises(ImageError, match="floating-point"):
        decode_rgb(buf.getvalue(), "images/f.jpg")
    buf = io.BytesIO()
    Image.fromarray(np.full((4, 4), 1 << 20, np.int32), "I").save(buf, "TIFF")
    with pytest.raises(ImageError, match=r"0\.\.65535"):
        decode_rgb(buf.getvalue(), "images/i.jpg")


def bomb() -> bytes:
    """A 48 KB PNG of 400 megapixels: above Pillow's own DecompressionBombError limit."""
    return _png(Image.new("1", (20000, 20000)))


def warning_bomb() -> bytes:
    """Between Pillow's warning limit and its error limit (it only warns)."""
    return _png(Image.new("1", (10000, 10000)))


def test_decompression_bomb_is_an_image_error_naming_the_source() -> None:
    with pytest.raises(ImageError, match=r"images/bomb\.jpg: refused as a decompression bomb"):
        decode_rgb(bomb(), "images/bomb.jpg")
    with pytest.raises(ImageError, match=r"images/big\.jpg: 10000x10000 is too large"):
        decode_rgb(warning_bomb(), "images/big.jpg")


def test_truncated_image_is_an_image_error() -> None:
    data = _png(Image.fromarray(gradient16()))
    with pytest.raises(ImageError, match=r"images/t\.jpg"):
        decode_rgb(data[: len(data) // 2], "images/t.jpg")
