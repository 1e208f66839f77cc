"""Categories are configuration: an ordered list, each with the key that assigns it."""

from typing import Any

from pydantic import Field, field_validator

from .base import StrictModel

#: Names with a meaning of their own in the review journal and on the edge.
RESERVED_NAMES = frozenset({"invalid", "unsure", "background"})
#: Keys the review tool and the keypad keep for themselves.
RESERVED_KEYS = frozenset({"s", "w", "x", "u", "?"})
DEFAULT_CATEGORIES = ("cardboard", "glass", "metal", "paper", "plastic", "trash")
_AUTO_KEYS = "1234567890abcdefghijklmnopqrtvyz"


class Category(StrictModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", title="Category name")
    key: str = Field(min_length=1, max_length=16, title="Key that assigns it")

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_NAMES:
            raise ValueError(f"{value!r} is reserved; choose another category name")
        return value

    @field_validator("key")
    @classmethod
    def _free_key(cls, value: str) -> str:
        if value.lower() in RESERVED_KEYS:
            raise ValueError(f"key {value!r} is reserved (s skip, w back, x invalid, u undo)")
        return value


def auto_keys(count: int) -> list[str]:
    """Keys 1-9, 0, then letters: any number of categories up to 32 gets one key each."""
    if count > len(_AUTO_KEYS):
        raise ValueError(f"at most {len(_AUTO_KEYS)} categories get automatic keys")
    return list(_AUTO_KEYS[:count])


def coerce_categories(value: Any) -> Any:
    """Accept ``["glass", ...]`` as well as ``[{name=..., key=...}]``; fill missing keys."""
    if not isinstance(value, list):
        return value
    keys = iter(auto_keys(min(len(value), len(_AUTO_KEYS))))
    used = {item.get("key") for item in value if isinstance(item, dict)}
    out: list[Any] = []
    for item in value:
        if isinstance(item, str):
            item = {"name": item}
        if isinstance(item, dict) and "key" not in item:
            key = next(keys, None)
            while key in used:
                key = next(keys, None)
            item = {**item, "key": key}
        out.append(item)
    return out


def check_categories(categories: list[Category]) -> list[Category]:
    names = [c.name for c in categories]
    keys = [c.key.lower() for c in categories]
    for label, values in (("name", names), ("key", keys)):
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise ValueError(f"duplicate category {label}s: {', '.join(dupes)}")
    return categories


def default_categories() -> list[Category]:
    return [Category(name=n, key=k) for n, k in zip(DEFAULT_CATEGORIES, auto_keys(6), strict=True)]
