"""The review tool: a keyboard-driven web page over the store; every decision saved at once.

``ReviewSession`` (session.py) is the logic the HTTP server (server.py) and the demo share.
"""

from recyclops.shared.journals import new_session_id

from .queue import QueueFilter, QueueItem, load_queue
from .session import NothingToUndoError, ReviewSession, UnknownImageError

__all__ = [
    "NothingToUndoError",
    "QueueFilter",
    "QueueItem",
    "ReviewSession",
    "UnknownImageError",
    "load_queue",
    "new_session_id",
]
