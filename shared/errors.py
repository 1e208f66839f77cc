"""One error root, so callers can catch everything Recyclops raises on purpose."""


class RecyclopsError(Exception):
    """Root of every error Recyclops raises on purpose."""


class ConfigError(RecyclopsError):
    """A config file or override is malformed; the message names file, key and expectation."""


class StoreError(RecyclopsError):
    """The object store failed or was addressed wrongly."""


class InvalidKeyError(StoreError):
    """An object key is unsafe (``..``, absolute, control characters) or malformed."""


class ObjectExistsError(StoreError):
    """A put "only if absent" found the key already there."""


class ObjectNotFoundError(StoreError):
    """The key is not in the store."""


class ManifestError(RecyclopsError):
    """A model manifest or channel pointer is missing a field or fails verification."""


class MessageError(RecyclopsError):
    """An MQTT payload is malformed or hostile."""


class ImageError(RecyclopsError):
    """An image cannot be decoded or has the wrong shape."""


class StoreNotFoundError(StoreError):
    """The store itself is missing: an S3 bucket that does not exist, or no folder."""
