"""The composition root: the ``recyclops`` command and the demo, which may use every app."""
