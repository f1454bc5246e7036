"""Gallery load time and memory with many collections, against the same people in one collection.

A database of ``--collections`` × ``--people`` people (``--faces`` synthetic unit embeddings each,
128-d as dlib's) is written once per layout; then, alternating the layouts ``--rounds`` times in one
run (this machine is noisy), the process's galleries are rebuilt from it (``GallerySync.reload``, what
a worker does at start) and timed, with the memory the index holds (tracemalloc of the rebuild plus
faiss's buffers, counted from the rows). Identify-by-embedding within one collection is timed too.

    PYTHONPATH=. .venv/bin/python bench/collections_scale.py --collections 100 --people 50
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from app.core.db import Database, upgrade_database
from app.core.tables import Collection, Face, Person, new_id
from app.gallery.index import Galleries
from app.gallery.photo_folder import FolderPhotoStore
from app.gallery.sync import GallerySync

DIM = 128


def build(url: str, collections: int, people: int, faces: int, seed: int = 0) -> Database:
    upgrade_database(url)
    db = Database(url)
    rng = np.random.default_rng(seed)
    now = datetime.now(timezone.utc)
    with db.sessions.begin() as session:
        names = ["default"] + [f"site-{i:03d}" for i in range(1, collections)]
        if len(names) > 1:
            session.execute(insert(Collection), [{"name": n, "created_at": now} for n in names[1:]])
        person_rows, face_rows = [], []
        for c in names:
            for _ in range(people):
                pid = new_id()
                person_rows.append({"id": pid, "name": f"person {pid[:6]}", "collection": c, "meta": {},
                                    "created_at": now, "updated_at": now})
                for _ in range(faces):
                    v = rng.standard_normal(DIM).astype("<f4")
                    unit = (v / np.linalg.norm(v)).tobytes()
                    face_rows.append({"id": new_id(), "person_id": pid, "embedding": unit,
                                      "encoder_hash": "bench", "box": [0, 0, 1, 1], "det_score": 1.0,
                                      "created_at": now})
        session.execute(insert(Person), person_rows)
        session.execute(insert(Face), face_rows)
    return db


def measure(db: Database, tmp: Path) -> dict:
    galleries = Galleries(DIM)
    sync = GallerySync(galleries, db, FolderPhotoStore(tmp / "images", db.sessions), "bench")
    tracemalloc.start()
    t0 = time.perf_counter()
    sync.reload()
    load_s = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # faiss's own buffers are not seen by tracemalloc: 4 + 2 bytes a dimension a person (fp32 + fp16 rows)
    index_bytes = len(galleries) * DIM * 6
    one = galleries.get(galleries.names()[-1])
    queries = np.random.default_rng(1).standard_normal((200, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    t0 = time.perf_counter()
    for q in queries:
        one.forward(q[None], k=3)
    search_ms = (time.perf_counter() - t0) / len(queries) * 1000
    return {"load_s": load_s, "python_peak_mb": peak / 2**20, "index_mb": index_bytes / 2**20,
            "collections": len(galleries.names()), "people": len(galleries), "search_ms": search_ms}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--collections", type=int, default=100)
    ap.add_argument("--people", type=int, default=50)
    ap.add_argument("--faces", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        layouts = {
            f"{args.collections} collections x {args.people}": build(
                f"sqlite:///{tmp / 'many.db'}", args.collections, args.people, args.faces),
            f"1 collection x {args.collections * args.people}": build(
                f"sqlite:///{tmp / 'one.db'}", 1, args.collections * args.people, args.faces),
        }
        runs: dict[str, list[dict]] = {name: [] for name in layouts}
        for _ in range(args.rounds):
            for name, db in layouts.items():
                runs[name].append(measure(db, tmp))
        report = {}
        for name, rs in runs.items():
            report[name] = {"load_s_median": round(statistics.median(r["load_s"] for r in rs), 3),
                            "load_s_min": round(min(r["load_s"] for r in rs), 3),
                            "python_peak_mb": round(statistics.median(r["python_peak_mb"] for r in rs), 1),
                            "index_mb": round(rs[0]["index_mb"], 2), "people": rs[0]["people"],
                            "collections": rs[0]["collections"],
                            "search_ms_one_collection": round(statistics.median(r["search_ms"] for r in rs), 3)}
        for db in layouts.values():
            db.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
