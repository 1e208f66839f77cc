"""``recyclops edge run`` (the daemon) and ``recyclops edge classify IMAGE…``.

Nothing heavy is imported here: TensorFlow never, and the daemon's parts only when run.
"""

import argparse
import logging
import sys
from pathlib import Path

from ..shared.commands import AddCommon
from ..shared.config import Flag, RecyclopsConfig, apply_flags, from_args, load
from ..shared.errors import ImageError, RecyclopsError

logger = logging.getLogger(__name__)

HELP = "the bin sorter daemon: run, classify"


def configure(parser: argparse.ArgumentParser, add_common: AddCommon) -> None:
    subs = parser.add_subparsers(dest="edge_command", metavar="ACTION", required=True)
    run_p = subs.add_parser(
        "run",
        help="run the daemon (camera, classifier, keypad, uploads, updates)",
        description="Run the edge daemon. Flags override the config file.",
    )
    add_common(run_p)
    run_p.add_argument(
        "--camera-folder", metavar="DIR", help="replay the images of DIR (camera kind replay)"
    )
    run_p.add_argument("--fps", type=float, help="camera frame rate (replay pace)")
    run_p.add_argument(
        "--at-end", choices=["loop", "stop", "hold"], help="what a replay does at its end"
    )
    run_p.add_argument(
        "--keypad", choices=["none", "terminal", "gpio", "evdev"], help="keypad kind"
    )
    run_p.add_argument(
        "--store", metavar="URL", help="store URL (file:///path or s3://bucket/prefix)"
    )
    run_p.add_argument("--model-dir", metavar="DIR", help="installed models")
    run_p.add_argument("--spool-dir", metavar="DIR", help="upload spool")
    run_p.add_argument("--state-dir", metavar="DIR", help="status file folder")
    run_p.add_argument("--live-port", type=int, metavar="PORT", help="live view port (0: any free)")
    run_p.add_argument("--no-live-view", action="store_true", help="do not serve the live view")
    run_p.add_argument(
        "--jsonl",
        action="store_true",
        help="print one JSON object per event on stdout (ready, model, classification, gathered…)",
    )
    run_p.add_argument(
        "--wait-model",
        type=float,
        metavar="SECONDS",
        help="hold the camera until a model serves (at most SECONDS), so every frame is classified",
    )
    run_p.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    run_p.set_defaults(func=run)

    cls_p = subs.add_parser(
        "classify",
        help="print the current model's answer for image files",
        description="Classify image files with the installed (or given) model.",
    )
    add_common(cls_p)
    cls_p.add_argument("images", nargs="+", metavar="IMAGE")
    cls_p.add_argument(
        "--model",
        metavar="DIR",
        help="a model folder (manifest.json + model.tflite); default: the installed current model",
    )
    cls_p.add_argument("--json", action="store_true", help="one JSON object per image")
    cls_p.set_defaults(func=classify)


#: What each ``edge run`` flag sets; unset flags leave the file's and the environment's values.
RUN_FLAGS = (
    Flag("camera_folder", "edge.camera.kind", "--camera-folder", const="replay"),
    Flag("camera_folder", "edge.camera.source", "--camera-folder"),
    Flag("fps", "edge.camera.fps", "--fps"),
    Flag("at_end", "edge.camera.at_end", "--at-end"),
    Flag("keypad", "edge.keypad.kind", "--keypad"),
    Flag("store", "store.url", "--store"),
    Flag("model_dir", "edge.model_dir", "--model-dir"),
    Flag("spool_dir", "edge.spool_dir", "--spool-dir"),
    Flag("state_dir", "edge.state_dir", "--state-dir"),
    Flag("live_port", "edge.live_view.port", "--live-port"),
    Flag("no_live_view", "edge.live_view.enabled", "--no-live-view", const=False),
)


def apply_overrides(config: RecyclopsConfig, args: argparse.Namespace) -> RecyclopsConfig:
    """The flags as the configuration pipeline's top layer (errors name the flag)."""
    return apply_flags(config, from_args(args, RUN_FLAGS))


def run(args: argparse.Namespace) -> int:
    from .daemon import EdgeDaemon

    config = apply_overrides(load(args.config), args)
    daemon = EdgeDaemon(
        config, events=sys.stdout if args.jsonl else None, max_frames=args.max_frames
    )
    return daemon.run(wait_model=args.wait_model)


def classify(args: argparse.Namespace) -> int:
    from ..shared.mqtt import dumps_json
    from ..shared.preprocess import load_rgb
    from .classifier import Classifier

    config = load(args.config)
    folder = Path(args.model) if args.model else Path(config.edge.model_dir) / "current"
    if not (folder / "manifest.json").is_file():
        raise RecyclopsError(
            f"no model at {folder} (no manifest.json); install one or pass --model"
        )
    classifier = Classifier(
        folder, threads=config.edge.classifier.threads, backend=config.edge.classifier.backend
    )
    failed = 0
    for image in args.images:
        try:  # one bad image (undecodable, a decompression bomb) never stops the batch
            pred = classifier.classify(load_rgb(image))
        except ImageError as exc:
            text = str(exc)
            print(text if text.startswith(image) else f"{image}: {text}", file=sys.stderr)
            failed += 1
            continue
        except RecyclopsError as exc:
            print(f"{image}: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        if args.json:
            probs = {
                c: round(float(p), 4)
                for c, p in zip(classifier.categories, pred.probs, strict=True)
            }
            print(
                dumps_json(
                    {
                        "image": image,
                        "label": pred.label,
                        "score": round(pred.score, 4),
                        "model_version": classifier.version,
                        "probabilities": probs,
                    }
                )
            )
        else:
            print(f"{image}\t{pred.label}\t{pred.score:.3f}")
    if failed:
        print(f"{failed} of {len(args.images)} images failed", file=sys.stderr)
    return 1 if failed else 0
