"""Print the requirements of recyclops and the extras asked for, read from pyproject.toml.

The images install the dependencies in a layer of their own (cached until pyproject.toml or
the constraints change) before the source is copied, so a code change rebuilds one small
layer. Reading them from pyproject.toml keeps one list of dependencies, not two.

    python3 docker/requirements.py pyproject.toml cloud [--tf=cpu|gpu] [--without=NAME,…]

--tf=gpu swaps tensorflow-cpu for tensorflow[and-cuda] (the same version range): pip then
brings the CUDA and cuDNN libraries, so the image needs only the host's NVIDIA driver.
--without drops packages an image cannot use (the edge image: evdev, which needs a compiler
and a keyboard device that a container rarely has).
"""

import re
import sys
import tomllib


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def requirements(
    pyproject: str, extras: list[str], gpu: bool = False, without: frozenset[str] = frozenset()
) -> list[str]:
    with open(pyproject, "rb") as fh:
        project = tomllib.load(fh)["project"]
    optional = project.get("optional-dependencies", {})
    unknown = [e for e in extras if e not in optional]
    if unknown:
        raise SystemExit(f"requirements.py: unknown extra(s) {unknown}; known: {sorted(optional)}")
    out = list(project["dependencies"])
    for extra in extras:
        out += optional[extra]
    if gpu:
        swapped = []
        for req in out:
            name = _name(req)
            if name == "tensorflow-cpu":
                spec = req[len(name) :].split(";")[0].strip()
                swapped.append(f"tensorflow[and-cuda]{spec}")
            elif name != "tensorflow":  # the GPU build serves every architecture
                swapped.append(req)
        out = swapped
    return [r for r in out if _name(r) not in without]


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    variants = [a.split("=", 1)[1] for a in argv if a.startswith("--tf=")] or ["cpu"]
    without = frozenset(
        _name(n) for a in argv if a.startswith("--without=") for n in a[10:].split(",") if n
    )
    unknown = [a for a in argv if a.startswith("--") and not a.startswith(("--tf=", "--without="))]
    if len(args) < 1 or variants[-1] not in ("cpu", "gpu") or unknown:
        raise SystemExit(__doc__)
    extras = [e for a in args[1:] for e in a.split(",") if e]
    print("\n".join(requirements(args[0], extras, variants[-1] == "gpu", without)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
