"""Map the top-level folders (app/, edge/, cloud/, console/, shared/) onto recyclops.<folder>.

The repository keeps the layout users were promised (edge/, cloud/, shared/ at the top);
this mapping is the only reason this file exists. Everything else is in pyproject.toml.

Every folder is declared as a package, data folders too (a folder without ``__init__.py``
is a namespace package holding only data: all its files ship). Declaring them is what
setuptools asks for; leaving them out made it print "Package would be ignored" for each.
"""

import warnings
from pathlib import Path

from setuptools import find_namespace_packages, setup

# `pip install -e .` maps the folders with an import hook, and setuptools says so in an
# 8-line notice ("be careful with folders … named like your package") that pip shows even
# with -q. Nothing here is named recyclops, so the notice has nothing to warn about.
warnings.filterwarnings("ignore", message="Editable installation", category=UserWarning)

TOPS = ("app", "edge", "cloud", "console", "shared")
SKIP = ["__pycache__", "*.__pycache__"]
packages: list[str] = []
package_dir: dict[str, str] = {}
package_data: dict[str, list[str]] = {"recyclops.shared": ["py.typed"]}
for top in TOPS:
    package_dir[f"recyclops.{top}"] = top
    for sub in ["", *find_namespace_packages(top, exclude=SKIP)]:
        name = f"recyclops.{top}" + (f".{sub}" if sub else "")
        packages.append(name)
        folder = Path(top, *sub.split(".")) if sub else Path(top)
        if not (folder / "__init__.py").is_file():
            package_data[name] = ["*"]

setup(packages=packages, package_dir=package_dir, package_data=package_data)
