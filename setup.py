"""Map the top-level folders edge/, cloud/ and shared/ onto recyclops.edge, .cloud, .shared.

The repository keeps the layout users were promised (edge/, cloud/, shared/ at the top);
this mapping is the only reason this file exists. Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

TOPS = ("edge", "cloud", "shared")
packages: list[str] = []
package_dir: dict[str, str] = {}
for top in TOPS:
    packages.append(f"recyclops.{top}")
    package_dir[f"recyclops.{top}"] = top
    packages += [f"recyclops.{top}.{sub}" for sub in find_packages(top)]

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={
        "recyclops.edge": ["static/*", "systemd/*", "install/*", "configs/*"],
        "recyclops.cloud": ["configs/*", "clean/static/*"],
        "recyclops.cloud.clean": ["static/*"],
        "recyclops.cloud.demo": ["sample/*.md", "sample/*/*.jpg", "configs/*"],
        "recyclops.shared": ["py.typed"],
    },
    include_package_data=True,
)
