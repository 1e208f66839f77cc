"""``recyclops search``: a hyperparameter grid, every trial isolated, hashed and resumable.

Base-network activations are computed once per search (a few fixed augmented views per
training image, see ``fit.compute_features``) and every trial trains on them, so a frozen
trial costs seconds instead of a pass through MobileNetV2 per epoch. Fine-tuning trials
train the top blocks on the cached cut-layer activations.

Layout of ``out_dir``: ``trials/<id>/result.json`` (written last: its presence means done),
``tensorboard/<id>/`` (one HParams view for all trials), ``results.csv``, ``best.toml``.
"""

import csv
import gc
import hashlib
import io
import itertools
import json
import logging
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..shared import layout
from ..shared.atomic import atomic_write_text
from ..shared.config import SearchConfig, TrainConfig
from ..shared.errors import RecyclopsError, StoreError
from ..shared.store import ObjectStore
from .dataset import Dataset, load_dataset

logger = logging.getLogger(__name__)
GRID_KEYS = ("batch_size", "dropout", "optimizer", "learning_rate", "fine_tune")
RESULT_FILE = "result.json"


class SearchError(RecyclopsError):
    """The grid or a shard specification is invalid."""


@dataclass(frozen=True)
class Trial:
    index: int
    config: TrainConfig

    @property
    def params(self) -> dict[str, Any]:
        return {k: getattr(self.config, k) for k in GRID_KEYS}

    @property
    def id(self) -> str:
        """A hash of the trial's whole config: the same trial always gets the same id."""
        return hashlib.sha256(self.config.model_dump_json().encode()).hexdigest()[:12]


def grid(base: TrainConfig, search: SearchConfig) -> list[Trial]:
    values = [getattr(search, k) for k in GRID_KEYS]
    trials = []
    for i, combo in enumerate(itertools.product(*values)):
        update = dict(zip(GRID_KEYS, combo, strict=True))
        update.update(
            epochs=search.epochs,
            fine_tune_epochs=search.fine_tune_epochs,
            fine_tune_learning_rate=None,
        )
        trials.append(Trial(i, TrainConfig.model_validate({**base.model_dump(), **update})))
    return trials


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(p) for p in text.split("/"))
    except ValueError:
        raise SearchError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise SearchError(f"--shard {text!r}: need 0 <= I < N")
    return index, count


def search_id(base: TrainConfig, search: SearchConfig, fingerprint: str) -> str:
    text = base.model_dump_json() + search.model_dump_json() + fingerprint
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def rss_mb() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError):
        return 0.0


def run_search(
    base: TrainConfig,
    search: SearchConfig,
    data: str | Path | Dataset,
    out_dir: str | Path,
    *,
    shard: tuple[int, int] = (0, 1),
    store: ObjectStore | None = None,
    name: str | None = None,
    retry_failed: bool = False,
) -> list[dict[str, Any]]:
    """Run this shard's unfinished trials; returns the results of the trials it ran."""
    from .fit import compute_features, fit_cached, prepare_base
    from .model import build_parts
    from .train import prepare_arrays, seed_everything

    ds = data if isinstance(data, Dataset) else load_dataset(data)
    out = Path(out_dir)
    sid = name or search_id(base, search, ds.fingerprint)
    trials = [t for t in grid(base, search) if t.index % shard[1] == shard[0]]
    todo = [t for t in trials if not _finished(out, t, retry_failed, ds.fingerprint)]
    logger.info(
        "search %s: %d trials in this shard, %d already finished",
        sid,
        len(trials),
        len(trials) - len(todo),
    )
    if not todo:
        return []
    features_cfg = base.model_copy(update={"fine_tune": any(t.config.fine_tune for t in todo)})
    arrays = prepare_arrays(features_cfg, ds).data
    seed_everything(base.seed)
    t0 = time.monotonic()
    feats = compute_features(
        build_parts(features_cfg, len(ds.categories)),
        features_cfg,
        arrays,
        need_cut=features_cfg.fine_tune,
    )
    feature_seconds = time.monotonic() - t0
    logger.info("base features computed once in %.1f s", feature_seconds)
    _clear()
    results = []
    for trial in todo:
        folder = out / "trials" / trial.id
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "config.json", trial.config.model_dump_json(indent=1))
        t1 = time.monotonic()
        result: dict[str, Any] = {
            "search": sid,
            "trial": trial.id,
            "index": trial.index,
            "data": ds.fingerprint,
            **trial.params,
            # exactly what was scored, so best.toml reproduces it
            "config": trial.config.model_dump(mode="json"),
        }
        try:
            seed_everything(trial.config.seed)
            parts = build_parts(trial.config, len(ds.categories))
            prepare_base(parts, trial.config, arrays)
            hist = fit_cached(parts, trial.config, arrays, verbose=0, features=feats)
            best = max(s["best_val_accuracy"] for s in hist["stages"])
            result.update(
                status="ok",
                val_accuracy=round(float(best), 4),
                epochs=sum(s["epochs"] for s in hist["stages"]),
            )
        except Exception as exc:  # one failing trial must not stop the others
            logger.error("trial %s failed: %s", trial.id, exc)
            result.update(
                status="failed",
                error=f"{type(exc).__name__}: {exc}",
                traceback=traceback.format_exc(limit=5),
            )
        finally:
            _clear()
        result.update(
            seconds=round(time.monotonic() - t1, 2),
            rss_mb=rss_mb(),
            feature_seconds=round(feature_seconds, 1),
        )
        _log_trial(out, trial, result)
        atomic_write_text(folder / RESULT_FILE, json.dumps(result, indent=1))
        if store is not None:
            _upload(store, sid, result)
        results.append(result)
        logger.info(
            "trial %d/%d %s: %s val %.3f (%.1f s, rss %.0f MB)",
            trial.index + 1,
            len(grid(base, search)),
            trial.id,
            result["status"],
            result.get("val_accuracy", 0.0),
            result["seconds"],
            result["rss_mb"],
        )
    return results


def _finished(out: Path, trial: Trial, retry_failed: bool, fingerprint: str) -> bool:
    """Done on this very data set: a result from before ``setup`` added images is redone."""
    path = out / "trials" / trial.id / RESULT_FILE
    if not path.is_file():
        return False
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if data.get("data") != fingerprint:
        return False
    return data.get("status") == "ok" or not retry_failed


def _clear() -> None:
    """No state leaks from one trial into the next: a fresh Keras graph and a GC pass."""
    import keras

    keras.backend.clear_session()
    gc.collect()


def _log_trial(out: Path, trial: Trial, result: dict[str, Any]) -> None:
    from .tblog import log_hparams

    metrics = {
        "val_accuracy": float(result.get("val_accuracy", 0.0)),
        "seconds": float(result["seconds"]),
    }
    log_hparams(out / "tensorboard" / trial.id, trial.params, metrics, trial_id=trial.id)


def _upload(store: ObjectStore, sid: str, result: dict[str, Any]) -> None:
    key = f"{layout.run_prefix('search', sid)}{result['trial']}.json"
    try:
        store.put(key, json.dumps(result, indent=1).encode())
    except StoreError as exc:
        logger.warning("could not upload %s: %s (kept locally)", key, exc)


def gather(
    out_dir: str | Path | None = None, store: ObjectStore | None = None, sid: str | None = None
) -> list[dict[str, Any]]:
    """Every trial result, from the local folder and/or the store's runs/search/<id>/."""
    found: dict[str, dict[str, Any]] = {}
    if out_dir is not None:
        for path in sorted(Path(out_dir).glob(f"trials/*/{RESULT_FILE}")):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and "trial" in data:
                found[f"{data.get('search')}/{data['trial']}"] = data
    if store is not None:
        prefix = layout.run_prefix("search", sid) if sid else layout.RUNS + "search/"
        for key in store.list(prefix):
            if key.endswith(".json"):
                try:
                    data = json.loads(store.get(key))
                except (StoreError, ValueError):
                    continue
                if isinstance(data, dict) and "trial" in data:  # skip what is not a result
                    found.setdefault(f"{data.get('search')}/{data['trial']}", data)
    return sorted(found.values(), key=lambda r: (-(r.get("val_accuracy") or -1), r["index"]))


def write_report(
    results: list[dict[str, Any]], base: TrainConfig, out_dir: str | Path
) -> tuple[str, Path | None]:
    """results.csv, the printed table, and best.toml (a config ``recyclops train -c`` accepts)."""
    import tomli_w

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cols = ["index", "trial", *GRID_KEYS, "status", "val_accuracy", "epochs", "seconds", "rss_mb"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, cols, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(results)
    atomic_write_text(out / "results.csv", buf.getvalue())
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in results]
    best = next((r for r in results if r.get("status") == "ok"), None)
    best_path = None
    if best is not None:
        scored = best.get("config") or {**base.model_dump(), **{k: best[k] for k in GRID_KEYS}}
        tuned = TrainConfig.model_validate(scored)
        data = {k: v for k, v in tuned.model_dump().items() if v is not None}
        text = (
            f"# Best trial {best['trial']} of search {best['search']}: validation accuracy "
            f"{best['val_accuracy']}\n# recyclops train -c {out / 'best.toml'}\n"
            + tomli_w.dumps({"train": data})
        )
        best_path = out / "best.toml"
        atomic_write_text(best_path, text)
    return "\n".join(lines), best_path
