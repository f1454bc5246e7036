"""Load on a real `faceshot serve`: identify throughput and latency under 1/4/16 clients, and a kill -9 drill.

Everything talks to a server this script starts itself on 127.0.0.1 (fresh data
directory, FACESHOT_ADMIN_KEY set); every loop is bounded in count and in time.

Load (default): for each gallery size, a fresh server; 50 people from real photos
(2 photos each of people with at least 3 in ``--photos``) are enrolled over HTTP.
For a gallery above 50, ``size - 50`` synthetic people (random unit vectors, one
face each, under the running encoder's hash) are inserted straight into the
database *before* the server starts, so it loads and searches them all. Then a
bounded number of identify requests (each one-face 250x250 photo, the people's
third photos) is sent by 1, 4 and 16 concurrent client threads.

    .venv/bin/python bench/load.py --photos ../shared/data/lfw-dev --gallery 50 100000 --clients 1 4 16

Kill drill (``--kill-restart``): concurrent enrolls (with external_id, so a retry of
an enroll that committed before the kill answers 409 instead of enrolling twice)
and identifies; midway the server gets SIGKILL and is restarted on the same data
directory and port. Requests that fail with connection errors are retried and
counted apart; at the end there must be no error outside the kill window and no
lost enrollment: every enroll that returned 201 (or whose retry found it
committed) is present with its faces and is named by an identify of its own photo.

    .venv/bin/python bench/load.py --photos ../shared/data/lfw-dev --kill-restart
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.testing.server import HEADERS, Server  # noqa: E402  (one server harness for tests and benches)


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def percentiles(ms: list[float]) -> dict:
    if not ms:
        return {"p50": None, "p95": None, "p99": None}
    a = np.array(ms)
    return {k: round(float(np.percentile(a, q)), 1) for k, q in (("p50", 50), ("p95", 95), ("p99", 99))}


def start(server: Server, torch_threads: int | None, micro_batch: str | None = None) -> float:
    """Start the server for load: rate limits off (they are tested in tests/api/test_security.py); threads, slots
    and micro-batching are the service's defaults unless given."""
    env = {"FACESHOT_RATE_LIMIT": "", "FACESHOT_AUTH_FAILURE_LIMIT": ""}
    if torch_threads:
        env["FACESHOT_TORCH_THREADS"] = env["OMP_NUM_THREADS"] = str(torch_threads)
    if micro_batch:
        env["FACESHOT_MICRO_BATCH"] = micro_batch
    return server.start(timeout=180, env=env)


def real_people(photos: Path) -> list[tuple[str, list[Path]]]:
    out = []
    for d in sorted(photos.iterdir()):
        if d.is_dir():
            files = sorted(d.glob("*.jpg"))
            if len(files) >= 3:
                out.append((d.name, files))
    return out


def insert_synthetic(data_dir: Path, n: int, seed: int = 0) -> dict:
    """``n`` people with one random unit embedding each, written in bulk before the server starts."""
    from sqlalchemy import insert, update

    from app.core.config import Settings
    from app.core.db import make_engine, upgrade_database
    from app.core.tables import Face, GalleryState, Person, new_id, utcnow
    from models.pipeline import FacePipeline

    t0 = time.monotonic()
    settings = Settings(data_dir=data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_database(settings.sqlalchemy_url)
    encoder = FacePipeline.from_spec("dlib", "cpu").encoder
    rng = np.random.default_rng(seed)
    engine = make_engine(settings.sqlalchemy_url)
    now = utcnow()
    with engine.begin() as conn:
        for start in range(0, n, 10_000):
            m = min(10_000, n - start)
            v = rng.normal(size=(m, encoder.metadata.embedding_size)).astype(np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            pids = [new_id() for _ in range(m)]
            conn.execute(
                insert(Person),
                [
                    {
                        "id": p,
                        "name": f"synthetic {start + i:06d}",
                        "external_id": None,
                        "meta": {},
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i, p in enumerate(pids)
                ],
            )
            conn.execute(
                insert(Face),
                [
                    {
                        "id": new_id(),
                        "person_id": p,
                        "embedding": v[i].astype("<f4").tobytes(),
                        "encoder_hash": encoder.content_hash,
                        "box": [0, 0, 1, 1],
                        "det_score": 1.0,
                        "image_file": None,
                        "image_type": None,
                        "created_at": now,
                    }
                    for i, p in enumerate(pids)
                ],
            )
        conn.execute(update(GalleryState).where(GalleryState.id == 1).values(version=GalleryState.version + 1))
    engine.dispose()
    return {"synthetic_people": n, "insert_s": round(time.monotonic() - t0, 1)}


def enroll_real(base: str, people, want: int) -> tuple[dict[str, str], dict]:
    """Enroll up to ``want`` people (2 photos each); returns {folder: person_id} and refusals."""
    enrolled, refused = {}, {}
    with httpx.Client(headers=HEADERS, timeout=120) as client:
        for name, files in people:
            if len(enrolled) >= want:
                break
            r = client.post(
                f"{base}/enroll",
                data={"name": name, "external_id": name},
                files=[("images", (f.name, f.read_bytes(), "image/jpeg")) for f in files[:2]],
            )
            if r.status_code == 201:
                enrolled[name] = r.json()["person"]["id"]
            else:
                refused[name] = r.json()["error"]["code"]
    return enrolled, refused


def one_face_probes(base: str, people, enrolled: dict[str, str]) -> list[tuple[str, bytes]]:
    probes = []
    with httpx.Client(headers=HEADERS, timeout=120) as client:
        for name, files in people:
            if name not in enrolled:
                continue
            data = files[2].read_bytes()
            r = client.post(f"{base}/detect", files={"image": ("q.jpg", data, "image/jpeg")})
            if (
                r.status_code == 200
                and len(r.json()["faces"]) == 1
                and r.json()["image"] == {"width": 250, "height": 250}
            ):
                probes.append((name, data))
    return probes


def run_level(base: str, probes, enrolled, clients: int, requests: int, time_limit: float) -> dict:
    """``requests`` identify calls shared by ``clients`` threads, stopped at ``time_limit`` seconds."""
    lock = threading.Lock()
    state = {"next": 0}
    lat, errors, correct, answered = [], {}, [0], [0]
    deadline = time.monotonic() + time_limit

    def worker():
        with httpx.Client(headers=HEADERS, timeout=120) as client:
            while time.monotonic() < deadline:
                with lock:
                    i = state["next"]
                    if i >= requests:
                        return
                    state["next"] += 1
                name, data = probes[i % len(probes)]
                t0 = time.perf_counter()
                try:
                    r = client.post(f"{base}/identify", files={"image": ("q.jpg", data, "image/jpeg")})
                    status = r.status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                ms = (time.perf_counter() - t0) * 1000
                with lock:
                    if status == 200:
                        lat.append(ms)
                        answered[0] += 1
                        person = r.json()["faces"][0]["person"] if r.json()["faces"] else None
                        correct[0] += bool(person and person["id"] == enrolled[name])
                    else:
                        errors[str(status)] = errors.get(str(status), 0) + 1

    load_before = loadavg()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(time_limit + 180)
    wall = time.perf_counter() - t0
    return {
        "clients": clients,
        "requests": state["next"],
        "ok": len(lat),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "wall_s": round(wall, 1),
        "req_per_s": round(len(lat) / wall, 2),
        "latency_ms": percentiles(lat),
        "named_correctly": round(correct[0] / max(1, answered[0]), 3),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    }


def load_run(args, size: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="faceshot-load-"))
    data = work / "data"
    people = real_people(Path(args.photos))
    report: dict = {"gallery": size}
    if size > args.real_people:
        report["synthetic"] = insert_synthetic(data, size - args.real_people)
    server = Server(data)
    try:
        report["startup_s"] = round(start(server, args.torch_threads, args.micro_batch), 1)
        report["micro_batch"] = args.micro_batch or "default (auto: on with CUDA)"
        t0 = time.monotonic()
        enrolled, refused = enroll_real(server.url, people, args.real_people)
        report["real_people"] = len(enrolled)
        report["enroll_s"] = round(time.monotonic() - t0, 1)
        report["enroll_refused"] = refused
        model = httpx.get(f"{server.url}/model", headers=HEADERS, timeout=30).json()
        report["indexed_people"] = model["gallery"]["indexed_people"]
        probes = one_face_probes(server.url, people, enrolled)
        report["probes"] = len(probes)
        run_level(server.url, probes, enrolled, 2, min(10, len(probes)), 120)  # warm-up
        report["levels"] = []
        for c in args.clients:
            level = run_level(server.url, probes, enrolled, c, max(args.requests, 4 * c), args.level_time)
            print(json.dumps({"gallery": size, **level}), flush=True)
            report["levels"].append(level)
    finally:
        server.stop()
    return report


# -- the kill -9 drill ---------------------------------------------------------------------------
def kill_restart(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="faceshot-kill-"))
    server = Server(work / "data")
    people = real_people(Path(args.photos))[: args.kr_people]
    lock = threading.Lock()
    window = {"kill": None, "ready": None}
    stats = {
        "enroll_201": 0,
        "enroll_recovered_409": 0,
        "enroll_refused_422": 0,
        "identify_ok": 0,
        "retried_connection_errors_in_window": 0,
        "errors_in_window": [],
        "errors_outside_window": [],
    }
    enrolled: dict[str, str] = {}
    done_enrolls = [0]
    enrolls_finished = threading.Event()
    started_at = time.monotonic()
    hard_deadline = started_at + args.kr_time

    def in_window(t0: float, t1: float) -> bool:
        """The attempt overlapped [kill, ready + 1 s]."""
        k, r = window["kill"], window["ready"]
        if k is None:
            return False
        return t1 >= k and (r is None or t0 <= r + 1.0)

    def attempt(client, method, url, **kw):
        """One request, retried on connection errors (bounded); returns (response, retries)."""
        retries = 0
        while True:
            t0 = time.monotonic()
            try:
                return client.request(method, url, **kw), retries
            except httpx.TransportError as exc:
                t1 = time.monotonic()
                with lock:
                    if in_window(t0, t1):
                        stats["retried_connection_errors_in_window"] += 1
                    else:
                        stats["errors_outside_window"].append(
                            f"{method} {url.rsplit('/', 1)[-1]}: {type(exc).__name__}"
                        )
                retries += 1
                if retries > 600 or time.monotonic() > hard_deadline:
                    raise
                time.sleep(0.25)  # the server is restarting; try again shortly

    def record_error(what: str, t0: float):
        with lock:
            (stats["errors_in_window"] if in_window(t0, time.monotonic()) else stats["errors_outside_window"]).append(
                what
            )

    queue = list(people)

    def enroller():
        with httpx.Client(headers=HEADERS, timeout=120) as client:
            while time.monotonic() < hard_deadline:
                with lock:
                    if not queue:
                        return
                    name, files = queue.pop(0)
                t0 = time.monotonic()
                r, retries = attempt(
                    client,
                    "POST",
                    f"{server.url}/enroll",
                    data={"name": name, "external_id": name},
                    files=[("images", (f.name, f.read_bytes(), "image/jpeg")) for f in files[:2]],
                )
                if r.status_code == 201:
                    with lock:
                        stats["enroll_201"] += 1
                        enrolled[name] = r.json()["person"]["id"]
                elif r.status_code == 409 and retries:
                    # the attempt cut off by the kill had committed: find it by its external_id
                    found = client.get(f"{server.url}/people", params={"search": name, "limit": 10}).json()["items"]
                    ids = [p["id"] for p in found if p["external_id"] == name]
                    with lock:
                        stats["enroll_recovered_409"] += 1
                        if ids:
                            enrolled[name] = ids[0]
                        else:
                            stats["errors_outside_window"].append(f"enroll {name}: 409 but not found")
                elif r.status_code == 422:
                    with lock:
                        stats["enroll_refused_422"] += 1
                else:
                    record_error(f"enroll {name}: {r.status_code} {r.text[:200]}", t0)
                with lock:
                    done_enrolls[0] += 1

    probes = [files[2].read_bytes() for _, files in people]

    def identifier(k: int):
        with httpx.Client(headers=HEADERS, timeout=120) as client:
            for i in range(args.kr_identifies):
                if enrolls_finished.is_set() or time.monotonic() > hard_deadline:
                    return
                t0 = time.monotonic()
                r, _ = attempt(
                    client,
                    "POST",
                    f"{server.url}/identify",
                    files={"image": ("q.jpg", probes[(i * 7 + k) % len(probes)], "image/jpeg")},
                )
                if r.status_code == 200:
                    with lock:
                        stats["identify_ok"] += 1
                else:
                    record_error(f"identify: {r.status_code} {r.text[:200]}", t0)

    def killer():
        while done_enrolls[0] < len(people) // 2 and time.monotonic() < hard_deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # land inside a request, not between two
        window["kill"] = time.monotonic()
        server.kill()
        stats["killed_after_enrolls"] = done_enrolls[0]
        stats["restart_s"] = round(start(server, args.torch_threads), 1)
        window["ready"] = time.monotonic()

    try:
        stats["startup_s"] = round(start(server, args.torch_threads), 1)
        threads = [threading.Thread(target=enroller) for _ in range(args.kr_enrollers)]
        threads += [threading.Thread(target=identifier, args=(k,)) for k in range(args.kr_identifiers)]
        kt = threading.Thread(target=killer)
        for t in threads:
            t.start()
        kt.start()
        for t in threads[: args.kr_enrollers]:
            t.join(args.kr_time + 60)
        enrolls_finished.set()
        for t in threads[args.kr_enrollers :] + [kt]:
            t.join(args.kr_time + 60)
        stats["kill_window_s"] = round(window["ready"] - window["kill"], 1) if window["ready"] else None

        # nothing lost: every enrollment present, with its two faces, and named by its own photo
        lost, unnamed = [], []
        with httpx.Client(headers=HEADERS, timeout=120) as client:
            total = client.get(f"{server.url}/people", params={"limit": 1}).json()["total"]
            for name, pid in sorted(enrolled.items()):
                r = client.get(f"{server.url}/people/{pid}")
                if r.status_code != 200 or r.json()["face_count"] != 2:
                    lost.append(name)
                    continue
                files = dict(people)[name]
                r = client.post(
                    f"{server.url}/identify", files={"image": ("q.jpg", files[0].read_bytes(), "image/jpeg")}
                )
                faces = r.json().get("faces") or []
                if not any(f["person"] and f["person"]["id"] == pid for f in faces):
                    unnamed.append(name)
        stats.update(
            enrolled=len(enrolled),
            people_in_database=total,
            lost=lost,
            not_identified=unnamed,
            duplicates_or_phantoms=total - len(enrolled),
            wall_s=round(time.monotonic() - started_at, 1),
        )
        stats["pass"] = (
            not stats["errors_outside_window"]
            and not lost
            and not unnamed
            and total == len(enrolled)
            and window["ready"] is not None
        )
    finally:
        server.stop()
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", default=str(ROOT.parent / "shared" / "data" / "lfw-dev"))
    ap.add_argument("--gallery", type=int, nargs="+", default=[50, 100_000])
    ap.add_argument("--real-people", type=int, default=50)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--requests", type=int, default=60, help="identify requests per level (at least 4 per client)")
    ap.add_argument("--level-time", type=float, default=120, help="seconds at most per level")
    ap.add_argument("--torch-threads", type=int, default=None, help="FACESHOT_TORCH_THREADS for the server")
    ap.add_argument("--micro-batch", choices=("auto", "on", "off"), default=None, help="FACESHOT_MICRO_BATCH")
    ap.add_argument("--kill-restart", action="store_true")
    ap.add_argument("--kr-people", type=int, default=40)
    ap.add_argument("--kr-enrollers", type=int, default=2)
    ap.add_argument("--kr-identifiers", type=int, default=4)
    ap.add_argument("--kr-identifies", type=int, default=300, help="identify requests per identifier thread, at most")
    ap.add_argument("--kr-time", type=float, default=400, help="seconds at most for the drill")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    report = {"cpus": os.cpu_count(), "loadavg_start": loadavg()}
    if args.kill_restart:
        report["kill_restart"] = kill_restart(args)
    else:
        report["runs"] = [load_run(args, size) for size in args.gallery]
    report["loadavg_end"] = loadavg()
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if args.kill_restart and not report["kill_restart"]["pass"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
