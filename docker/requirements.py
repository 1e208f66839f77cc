"""Print the requirements of recyclops and the extras asked for, read from pyproject.toml.

The images install the dependencies in a layer of their own (cached until pyproject.toml or
the constraints change) before the source is copied, so a code change rebuilds one small
layer. Reading them from pyproject.toml keeps one list of dependencies, not two.

    python3 docker/requirements.py pyproject.toml cloud [--tf=cpu|gpu]

--tf=gpu swaps tensorflow-cpu for tensorflow[and-cuda] (the same version range): pip then
brings the CUDA and cuDNN libraries, so the image needs only the host's NVIDIA driver.
"""

import re
import sys
import tomllib


def requirements(pyproject: str, extras: list[str], gpu: bool = False) -> list[str]:
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
            name = re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].lower().replace("_", "-")
            if name == "tensorflow-cpu":
                spec = req[len(name) :].split(";")[0].strip()
                swapped.append(f"tensorflow[and-cuda]{spec}")
            elif name != "tensorflow":  # the GPU build serves every architecture
                swapped.append(req)
        out = swapped
    return out


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--tf=")]
    variants = [a.split("=", 1)[1] for a in argv if a.startswith("--tf=")] or ["cpu"]
    if len(args) < 1 or variants[-1] not in ("cpu", "gpu"):
        raise SystemExit(__doc__)
    extras = [e for a in args[1:] for e in a.split(",") if e]
    print("\n".join(requirements(args[0], extras, gpu=variants[-1] == "gpu")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
