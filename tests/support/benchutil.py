"""Printing and saving benchmark results in the shape docs/benchmarks.md is built from."""

import json
from pathlib import Path
from typing import Any

TRASHNET = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "trashnet"
BENCH_DIR = Path(__file__).resolve().parents[2] / "build" / "bench"


def table(caption: str, headers: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"caption": caption, "headers": headers, "rows": rows}


def emit(result: dict[str, Any], json_out: str | None) -> None:
    """Markdown to stdout; the JSON dict to ``json_out``."""
    print(f"## {result['title']}\n")
    for t in result.get("tables", []):
        print(f"**{t['caption']}**\n")
        print("| " + " | ".join(map(str, t["headers"])) + " |")
        print("|" + "---|" * len(t["headers"]))
        for row in t["rows"]:
            print("| " + " | ".join(map(str, row)) + " |")
        print()
    for name, value in result.get("figures", {}).items():
        print(f"- {name}: {value}")
    for note in result.get("notes", []):
        print(f"- {note}")
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(result, indent=2, default=str))


def find_trashnet() -> Path | None:
    return TRASHNET if TRASHNET.is_dir() else None
