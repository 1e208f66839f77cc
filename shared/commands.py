"""The contract between the ``recyclops`` command root (``recyclops.app.cli``) and each app's
subcommand module, so that apps never import the root that names them."""

import argparse
from typing import Protocol


class AddCommon(Protocol):
    """Adds the options every subcommand shares (``-c/--config``, ``-v``, ``-q``)."""

    def __call__(self, parser: argparse.ArgumentParser, config: bool = True) -> None: ...
