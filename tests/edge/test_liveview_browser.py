"""The live view in a real browser (Playwright driving Debian's chromium, headless)."""

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_helpers import install_fixture
from support.waiting import wait_until

from recyclops.edge.daemon import EdgeDaemon
from recyclops.shared.config import RecyclopsConfig


def test_operator_page_shows_stream_and_prediction(
    make_config: Callable[..., RecyclopsConfig], artifacts_dir: Path, browser: Any
) -> None:
    config = make_config(live_view={"enabled": True, "port": 0, "fps": 10})
    install_fixture(Path(config.edge.model_dir))
    daemon = EdgeDaemon(config)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        live = wait_until(lambda: daemon.live, 15, "the live view started")
        page = browser.new_page()
        page.goto(live.url)
        page.wait_for_function(
            "document.getElementById('model').textContent === 'fixture-1'", timeout=15000
        )
        page.wait_for_function("document.getElementById('stream').naturalWidth > 0", timeout=15000)
        label = page.text_content("#label") or ""
        assert label.split()[0] in {"cardboard", "glass", "metal", "unsure"}
        daemon.on_key("2")
        page.wait_for_function(
            "document.getElementById('gathered').textContent === '1'", timeout=10000
        )
        page.screenshot(path=str(artifacts_dir / "edge-live-view.png"))
    finally:
        daemon.stop.set()
        thread.join(20)


def test_status_panel_keeps_working_when_the_model_answers_nan(
    make_config: Callable[..., RecyclopsConfig], tmp_path: Path, browser: Any
) -> None:
    """A NaN model (runtime guard off): status.json stays JSON and the panel keeps updating."""
    from edge_helpers import DATA, GREEN, float_manifest, golden_of, publish_model, write_frames

    from recyclops.shared.store import open_store

    frames = write_frames(tmp_path / "green", [GREEN] * 8)
    config = make_config(
        camera={"source": str(frames)},
        updates={"guard_frames": 0},
        live_view={"enabled": True, "port": 0, "fps": 10},
    )
    model = (DATA / "nan_on_green.tflite").read_bytes()
    golden = golden_of(model, float_manifest("v-nan", model), tmp_path / "cloud")
    publish_model(
        open_store(config.store),
        "v-nan",
        model_bytes=model,
        manifest=float_manifest("v-nan", model, golden),
        golden=golden,
    )
    daemon = EdgeDaemon(config)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        live = wait_until(lambda: daemon.live, 15, "the live view started")
        page = browser.new_page()
        page.goto(live.url)
        page.wait_for_function(
            "document.getElementById('model').textContent === 'v-nan'", timeout=15000
        )
        page.wait_for_function(
            "document.getElementById('label').textContent === 'unsure -'", timeout=15000
        )
        daemon.on_key("2")
        page.wait_for_function(
            "document.getElementById('gathered').textContent === '1'", timeout=10000
        )
    finally:
        daemon.stop.set()
        thread.join(20)
