"""The one hand-off of a classifier to the frame loop.

The updater prepares a model on its own thread (fetch, verify, self-test, load) and
``offer``s it, as does the daemon for the model installed at start; the frame loop
``take``s it between two frames, exactly once. A newer offer replaces one not yet taken.
``None`` is a real offer: a rollback with nothing left to roll back to serves no model.
"""

import threading

from .classifier import Classifier

Offer = tuple[Classifier | None, str]  # (classifier, via: installed, poll, mqtt, rollback)


class ModelSlot:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offer: Offer | None = None
        self._serving: Classifier | None = None

    def offer(self, classifier: Classifier | None, via: str) -> None:
        with self._lock:
            self._offer = (classifier, via)

    def take(self) -> Offer | None:
        """The offer not yet taken, or None; what it holds serves from now on."""
        with self._lock:
            offer, self._offer = self._offer, None
            if offer is not None:
                self._serving = offer[0]
            return offer

    def version(self) -> str | None:
        """The version serving, or about to serve (offered, not yet taken): the updater's
        idea of "current". None when no model serves: a broken install is refetched."""
        with self._lock:
            classifier = self._offer[0] if self._offer is not None else self._serving
            return classifier.version if classifier else None
