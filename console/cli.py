"""``recyclops clean``: serve the review page until Ctrl-C or SIGTERM, then save and exit."""

import argparse
import getpass
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from recyclops.shared.commands import AddCommon
from recyclops.shared.config import Flag, RecyclopsConfig, from_args, load

HELP = "review gathered labels in a browser"
logger = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser, add_common: AddCommon) -> None:
    add_common(parser)
    parser.add_argument("--store", metavar="URL", help="store URL (default: config store.url)")
    parser.add_argument("--endpoint-url", metavar="URL", help="S3 endpoint (SeaweedFS, MinIO)")
    parser.add_argument("--host", help="bind address (default 127.0.0.1; others need a token)")
    parser.add_argument("--port", type=int, help="port (default 8080; 0 picks a free one)")
    parser.add_argument("--reviewer", help="your name, part of the session id (default: login)")
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="NAME",
        help="only images gathered with this label (repeatable)",
    )
    parser.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="ID",
        help="only images gathered on this device (repeatable)",
    )
    parser.add_argument(
        "--include-decided",
        action="store_true",
        default=None,
        help="also show images already decided in other sessions",
    )
    parser.add_argument(
        "--presign",
        action="store_true",
        default=None,
        help="serve S3 images by redirect to presigned URLs",
    )
    parser.add_argument("--flush-seconds", type=float, help="journal flush interval")
    parser.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate")
    parser.add_argument("--tls-key", metavar="PEM", help="the certificate's private key file")
    parser.add_argument(
        "--rescue-dir",
        metavar="DIR",
        default=str(default_rescue_dir()),
        help="local write-ahead log of every decision; sessions that could not save are "
        "uploaded from here at the next start (default: %(default)s)",
    )
    parser.set_defaults(func=run)


def default_rescue_dir() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "recyclops" / "clean"


#: What each flag sets; unset flags leave the file's and the environment's values.
FLAGS = (
    *(
        Flag(name, f"clean.{name}", "--" + name.replace("_", "-"))
        for name in (
            "host",
            "port",
            "reviewer",
            "include_decided",
            "presign",
            "flush_seconds",
            "tls_cert",
            "tls_key",
        )
    ),
    Flag("store", "store.url", "--store"),
    Flag("endpoint_url", "store.endpoint_url", "--endpoint-url"),
)


def _reviewer(config: RecyclopsConfig) -> str:
    if config.clean.reviewer:
        return config.clean.reviewer
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "reviewer"


def run(args: argparse.Namespace) -> int:
    from recyclops.shared.store import open_store

    from .queue import QueueFilter
    from .server import serve
    from .session import ReviewSession

    config = load(args.config, flags=from_args(args, FLAGS))
    unknown = [x for x in args.label if x not in [*config.category_names, "invalid"]]
    if unknown:
        logger.warning(
            "--label %s: not a configured category (gathered labels may be older)",
            ", ".join(unknown),
        )
    store = open_store(config.store)
    store.check_ready()  # a mistyped bucket: say so now, not after a review's first flush
    cc = config.clean
    session = ReviewSession(
        store,
        config.categories,
        reviewer=_reviewer(config),
        qfilter=QueueFilter(tuple(args.label), tuple(args.device), cc.include_decided),
        flush_seconds=cc.flush_seconds,
        flush_min_seconds=cc.flush_min_seconds,
        workers=cc.load_workers,
        refresh_seconds=cc.refresh_seconds,
        rescue_dir=Path(args.rescue_dir),
    )
    try:
        server = serve(
            session,
            cc.host,
            cc.port,
            presign=cc.presign,
            tls_cert=cc.tls_cert,
            tls_key=cc.tls_key,
            idle_timeout=cc.idle_timeout,
            session_ttl=cc.session_hours * 3600.0,
            login_attempts=cc.login_attempts,
            rollout=config.rollout,
            mqtt=config.mqtt if config.mqtt.host else None,
        )
    except BaseException:
        session.close()
        raise
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("signal %d: saving and stopping", signum)
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    server.start()
    print(
        f"recyclops clean: serving {server.url}  session {session.session_id}  "
        f"journal {session.journal_key}  ({session.queued} images queued)",
        flush=True,
    )
    if server.app.policy.token:
        print(
            f"recyclops clean: a token is required: open {server.url} and enter it in the "
            f"login form (scripts: the X-Recyclops-Token header, or {server.url}?token=<your "
            "token> once, which trades it for a session cookie)",
            flush=True,
        )
    if session.problems:
        print(
            f"recyclops clean: {len(session.problems)} unreadable records skipped (see log)",
            file=sys.stderr,
        )
    try:
        while not stop.wait(1.0):
            pass
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        server.stop()
        session.close()
    saved = session.saving()
    print(
        f"recyclops clean: {saved['decisions']} decisions saved in {saved['journal']}", flush=True
    )
    return 0
