"""Moving a channel, for every room that may: the cloud's ``publish``, ``rollback``,
``promote`` and ``watch``, and the console's promote and rollback actions.

- ``channels``: the writer of channel pointers (generations claimed with a conditional put);
- ``stats``: Fisher's exact test of two rates (is the canary worse beyond noise?);
- ``evidence``: the fleet's telemetry tallied per served version, and the promotion checks;
- ``actions``: promote and rollback themselves (the stored model re-checked the way a bin
  will, the channel advanced, the MQTT notice sent).

Nothing here imports TensorFlow; LiteRT only when a stored model is re-checked.
"""
