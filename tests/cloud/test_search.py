"""Search: hashed trials, resume after a killed run, shards, a failing trial, the report."""

import json
import os
import signal
import subprocess
import sys
import tomllib

import pytest
from support.synthetic import shapes
from support.waiting import wait_until

from recyclops.cloud import search as search_mod
from recyclops.cloud.dataset import Dataset
from recyclops.shared.config import SearchConfig, TrainConfig, load
from recyclops.shared.hashing import sha256_bytes

from .helpers import TINY_TOML

CATS = ["red", "green", "blue"]


def make_dataset(root, per_class=20):
    labels = {}
    for label, images in shapes(CATS, per_class, seed=3).items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for data in images:
            sha = sha256_bytes(data)
            (root / label / f"{sha}.jpg").write_bytes(data)
            labels[sha] = label
    ds = Dataset(root, CATS, labels)
    ds.save()
    return ds


def tiny():
    data = tomllib.loads(TINY_TOML.read_text())
    return TrainConfig(**data["train"]), SearchConfig(**data["search"])


def test_grid_ids_are_stable_and_shards_partition():
    base, grid_cfg = tiny()
    default = search_mod.grid(TrainConfig(), SearchConfig())
    assert len(default) == SearchConfig().size == 4 * 6 * 2 * 2 * 2
    a = [t.id for t in search_mod.grid(base, grid_cfg)]
    assert a == [t.id for t in search_mod.grid(base, grid_cfg)] and len(set(a)) == len(a)
    shards = [
        [t.index for t in search_mod.grid(base, grid_cfg) if t.index % 3 == i] for i in range(3)
    ]
    assert sorted(i for shard in shards for i in shard) == list(range(len(a)))
    with pytest.raises(search_mod.SearchError):
        search_mod.parse_shard("3/3")


@pytest.mark.slow
def test_search_resumes_after_a_killed_run(tmp_path):
    make_dataset(tmp_path / "data")
    out = tmp_path / "search"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [
        sys.executable,
        "-m",
        "recyclops.app.cli",
        "search",
        "-c",
        str(TINY_TOML),
        "--data",
        str(tmp_path / "data"),
        "--out",
        str(out),
        "--trial-epochs",
        "15",
        "-q",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def one_done_and_one_running() -> bool:
        """A finished trial and a started one without its result: a kill now lands mid-trial
        (killing right after a result, before the next folder exists, proves nothing)."""
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        finished = {p.parent.name for p in out.glob("trials/*/result.json")}
        return bool(finished) and bool({p.name for p in out.glob("trials/*")} - finished)

    try:
        wait_until(one_done_and_one_running, 240, "a finished trial and a running one")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("trials/*/result.json")}
    base, grid_cfg = tiny()
    grid_cfg = grid_cfg.model_copy(update={"epochs": 15})
    all_ids = {t.id for t in search_mod.grid(base, grid_cfg)}
    assert done and set(done) < all_ids, "the kill should land mid-search"
    started = {p.name for p in out.glob("trials/*")}
    assert started - set(done), "the killed trial left a folder without a result"

    ran = search_mod.run_search(base, grid_cfg, tmp_path / "data", out)
    assert {r["trial"] for r in ran} == all_ids - set(done)
    assert {
        p.parent.name: p.stat().st_mtime_ns
        for p in out.glob("trials/*/result.json")
        if p.parent.name in done
    } == done
    assert search_mod.run_search(base, grid_cfg, tmp_path / "data", out) == []  # nothing left

    results = search_mod.gather(out)
    assert len(results) == len(all_ids) and all(r["status"] == "ok" for r in results)
    table, best = search_mod.write_report(results, base, out)
    assert results[0]["trial"] in table
    cfg = load(best)
    assert (
        cfg.train.batch_size == results[0]["batch_size"]
        and cfg.train.dropout == results[0]["dropout"]
    )
    assert any(out.glob("tensorboard/*/events.out.tfevents.*"))


@pytest.mark.slow
def test_failing_trial_does_not_stop_the_others_and_results_reach_the_store(
    tmp_path, local_store, monkeypatch
):
    ds = make_dataset(tmp_path / "data", per_class=10)
    base, grid_cfg = tiny()
    grid_cfg = grid_cfg.model_copy(update={"epochs": 2})
    from recyclops.cloud import fit

    real = fit.fit_cached

    def flaky(parts, config, *args, **kwargs):
        if config.batch_size == 8 and config.dropout == 0.0:
            raise RuntimeError("out of memory (simulated)")
        return real(parts, config, *args, **kwargs)

    monkeypatch.setattr(fit, "fit_cached", flaky)
    ran = search_mod.run_search(
        base, grid_cfg, ds, tmp_path / "s", shard=(0, 1), store=local_store, name="t1"
    )
    statuses = sorted(r["status"] for r in ran)
    assert statuses == ["failed", "ok", "ok", "ok"]
    assert "simulated" in next(r["error"] for r in ran if r["status"] == "failed")
    stored = search_mod.gather(None, local_store, "t1")
    assert len(stored) == 4
    # a failed trial is not retried unless asked
    assert search_mod.run_search(base, grid_cfg, ds, tmp_path / "s", name="t1") == []
    monkeypatch.setattr(fit, "fit_cached", real)
    again = search_mod.run_search(base, grid_cfg, ds, tmp_path / "s", name="t1", retry_failed=True)
    assert [r["status"] for r in again] == ["ok"]
    assert (
        json.loads((tmp_path / "s" / "trials" / again[0]["trial"] / "result.json").read_text())[
            "status"
        ]
        == "ok"
    )


@pytest.mark.slow  # 100 s of CPU (feature extraction for three searches)
def test_new_data_redoes_trials_and_best_toml_is_what_was_scored(tmp_path, monkeypatch):
    """A finished trial counts only on the data it was scored on; best.toml reproduces the
    trial (its epochs, not the base config's)."""
    from recyclops.cloud import fit

    calls = []

    def fake_fit(parts, config, *args, **kwargs):  # the training itself is tested elsewhere
        calls.append(config.batch_size)
        return {"stages": [{"epochs": 1, "best_val_accuracy": 0.5 + config.dropout}]}

    monkeypatch.setattr(fit, "fit_cached", fake_fit)
    root = tmp_path / "data"
    ds = make_dataset(root, per_class=6)
    base, grid_cfg = tiny()
    grid_cfg = grid_cfg.model_copy(update={"epochs": 3, "batch_size": [8], "dropout": [0.0, 0.2]})
    out = tmp_path / "s"
    assert len(search_mod.run_search(base, grid_cfg, ds, out, name="fixed")) == 2
    assert search_mod.run_search(base, grid_cfg, ds, out, name="fixed") == []  # resumed
    bigger = make_dataset(root, per_class=8)  # setup brought new images
    assert bigger.fingerprint != ds.fingerprint
    assert len(search_mod.run_search(base, grid_cfg, bigger, out, name="fixed")) == 2
    _, best = search_mod.write_report(search_mod.gather(out), base, out)
    assert best is not None
    train = tomllib.loads(best.read_text())["train"]
    assert train["dropout"] == 0.2 and train["epochs"] == 3 != base.epochs
    assert load_best(best).train.epochs == 3


def load_best(path):
    return load(path, env={})
