"""Map the top-level folders edge/, cloud/ and shared/ onto recyclops.edge, .cloud, .shared.

The repository keeps the layout users were promised (edge/, cloud/, shared/ at the top);
this mapping is the only reason this file exists. Everything else is in pyproject.toml.

Every folder is declared as a package, data folders too (a folder without ``__init__.py``
is a namespace package holding only data: all its files ship). Declaring them is what
setuptools asks for; leaving them out made it print "Package would be ignored" for each.
"""

from pathlib import Path

from setuptools import find_namespace_packages, setup

TOPS = ("edge", "cloud", "shared")
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
