"""The package version: the edge compares it with a manifest's minimum edge version."""

__version__ = "0.3.0"  # 0.2.0: area_linear resize, 0.3.0: area_antialiased (METHOD_MIN_EDGE)


def parse_version(text: str) -> tuple[int, ...]:
    """Parse "1.2.3" into (1, 2, 3); anything after a non-digit in a part is ignored."""
    parts: list[int] = []
    for part in text.strip().split("."):
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        parts.append(int(digits or 0))
    return tuple(parts)
