"""The real app under uvicorn on a loopback port, and Debian's headless Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from app.core.config import Settings
from app.main import create_app

ADMIN = "test-admin-key-0123456789"
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
SIZES = {"desktop": (1280, 800), "phone": (390, 844), "wide": (1920, 1080)}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
CAMERA_PHOTO = ("John_Travolta", 0)  # the face the fake camera shows


def chromium_executable() -> str:
    path = shutil.which("chromium")
    if path is None:
        message = ("Debian's chromium is not installed, so the admin page's browser tests cannot run: "
                   "apt-get install -y chromium")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip("!!! NOT TESTED: " + message)
    return path


@contextmanager
def running_app(pipeline, data_dir: Path, **settings):
    """create_app on ``data_dir`` (Settings' fields as keywords), served by uvicorn in a thread on a loopback port."""
    import uvicorn

    app = create_app(Settings(data_dir=data_dir, admin_key=ADMIN, torch_threads=1, **settings), pipeline)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not srv.started:  # start-up (migrations, gallery) happens in the thread
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}", app=app, data_dir=data_dir)
    finally:
        srv.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture(scope="module")
def server(pipeline, tmp_path_factory):
    """create_app on a fresh data directory, served by uvicorn in a thread (shares the test's pipeline)."""
    # events recorded on fixed past days (attendance sheets): the operator's setting for analysing old footage
    with running_app(pipeline, tmp_path_factory.mktemp("admin-data"), event_max_age_h=24 * 365 * 20) as running:
        yield running


def write_y4m(photo: Path, path: Path, width: int = 640, height: int = 480, frames: int = 2) -> Path:
    """A tiny YUV4MPEG2 clip (4:2:0) of one photo, for Chromium's fake camera."""
    face = Image.open(photo).convert("RGB")
    face = face.resize((height, height * face.height // face.width))
    canvas = Image.new("RGB", (width, height), (90, 96, 104))
    canvas.paste(face, ((width - face.width) // 2, (height - face.height) // 2))
    ycc = np.asarray(canvas.convert("YCbCr"), dtype=np.float32)
    y = ycc[..., 0].astype(np.uint8)
    # 2x2 averages for the chroma planes.
    u, v = (ycc[..., c].reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3)).round().astype(np.uint8)
            for c in (1, 2))
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            fh.write(b"FRAME\n" + y.tobytes() + u.tobytes() + v.tobytes())
    return path


@pytest.fixture(scope="module")
def browser(photos, tmp_path_factory):
    executable = chromium_executable()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # detection and embedding run on a shared 2-core CPU
    who, index = CAMERA_PHOTO
    video = write_y4m(photos[who][index], tmp_path_factory.mktemp("camera") / "face.y4m")
    args = CHROMIUM_ARGS + ["--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={video}",
                            "--use-fake-ui-for-media-stream"]
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=args)
        yield chromium
        chromium.close()


def open_page(browser, url: str, **context_options):
    """A fresh browser context (no cookies) on ``url`` whose page records console errors and any request leaving
    the server (``page.problems``); close it with ``page.context.close()``."""
    options = {"viewport": {"width": SIZES["desktop"][0], "height": SIZES["desktop"][1]}, **context_options}
    context = browser.new_context(base_url=url, **options)
    context.grant_permissions(["camera"], origin=url)
    context.set_default_timeout(30_000)
    pg = context.new_page()
    pg.problems = []
    pg.on("console", lambda m: m.type == "error" and pg.problems.append(f"console: {m.text}"))
    pg.on("pageerror", lambda e: pg.problems.append(f"page error: {e}"))
    pg.on("response", lambda r: r.status >= 400 and not r.url.startswith(f"{url}/admin/api/")
          and pg.problems.append(f"{r.status} for {r.url}"))
    pg.on("request", lambda r: r.url.startswith((url, "blob:", "data:"))
          or pg.problems.append(f"request outside the server: {r.url}"))
    return pg


@pytest.fixture
def page(browser, server):
    pg = open_page(browser, server.url)
    yield pg
    pg.context.close()


def screenshot(page, name: str) -> None:
    """Full-page screenshots at desktop, phone and wide-screen width, saved under artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for size, (w, h) in SIZES.items():
        page.set_viewport_size({"width": w, "height": h})
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{size}.png"), full_page=True)
    page.set_viewport_size({"width": SIZES["desktop"][0], "height": SIZES["desktop"][1]})
