"""Identify with LISTEN/NOTIFY against the version check before every search, and how soon another process's write
is seen (issue 30, point 3).

Three processes' services in this one process (each with its own engine and connection pool), on one fresh
PostgreSQL schema: a writer, a reader that listens (FACESHOT_GALLERY_NOTIFY=true, the default) and a reader that
checks the gallery version before every search (FACESHOT_GALLERY_NOTIFY=false; what SQLite and the listener's
outages do). The gallery: --people people enrolled from random unit embeddings (the search is FAISS's, the same for
both; what differs is the round trip). Search latency: --searches identify calls by embedding on each reader,
interleaved one for one, so the machine's noise falls on both alike. Visibility: --writes enrollments by the writer,
after each of which each reader searches until it names the new person; the time from the writer's commit to that
answer.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python bench/gallery_notify.py \\
        --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pct(values: list[float]) -> dict:
    a = np.asarray(values)
    return {"p50": round(float(np.percentile(a, 50)), 3), "p95": round(float(np.percentile(a, 95)), 3),
            "max": round(float(a.max()), 3), "n": len(a)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--postgres", required=True, help="a PostgreSQL URL (a schema is made and dropped)")
    ap.add_argument("--people", type=int, default=200)
    ap.add_argument("--searches", type=int, default=2000)
    ap.add_argument("--writes", type=int, default=50)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import torch
    from sqlalchemy import create_engine, text

    from app.core.config import Settings
    from app.service import FaceService
    from app.startup import prepare_deployment
    from models.pipeline import FacePipeline

    torch.set_num_threads(1)
    schema = f"faceshot_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.postgres)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{args.postgres}{'&' if '?' in args.postgres else '?'}options=-csearch_path%3D{schema}"
    data = Path(tempfile.mkdtemp(prefix="faceshot-notify-"))
    pipeline = FacePipeline.from_spec("dlib", "cpu")
    services = []
    try:
        def service(notify: bool) -> FaceService:
            settings = Settings(data_dir=data, database_url=url, gallery_notify=notify, admin_key="b" * 32)
            db, _ = prepare_deployment(settings)
            s = FaceService(settings, pipeline, db)
            s.gallery_sync.reload()
            services.append(s)
            return s

        writer, listening, polling = service(True), service(True), service(False)
        listening.notifications.start()
        rng = np.random.default_rng(0)
        dim = pipeline.encoder.metadata.embedding_size
        vectors = rng.normal(size=(args.people + args.writes, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        hash_ = pipeline.encoder.content_hash
        for i in range(args.people):
            writer.people.enroll(f"person {i}", writer.people.prepared_from_embeddings([vectors[i].tolist()], hash_))
        ready = threading.Event()
        for _ in range(2000):
            if listening.notifications.listening:
                break
            ready.wait(0.005)
        probe = vectors[0] + 0.005 * rng.normal(size=dim).astype(np.float32)
        for reader in (listening, polling):  # both caught up before timing
            assert reader.recognition.identify(None, embedding=probe).faces[0].person is not None

        timings = {"listening": [], "polling": []}
        for i in range(args.searches):
            for name, reader in ((("listening", listening), ("polling", polling)) if i % 2 == 0
                                 else (("polling", polling), ("listening", listening))):
                t0 = time.perf_counter()
                reader.recognition.identify(None, embedding=probe)
                timings[name].append((time.perf_counter() - t0) * 1000)

        seen = {"listening": [], "polling": []}
        for j in range(args.writes):
            v = vectors[args.people + j]
            person = writer.people.enroll(f"new {j}", writer.people.prepared_from_embeddings([v.tolist()], hash_))
            committed = time.perf_counter()
            for name, reader in (("listening", listening), ("polling", polling)):
                while True:
                    face = reader.recognition.identify(None, embedding=v).faces[0]
                    if face.person is not None and face.person.id == person.person.id:
                        break
                seen[name].append((time.perf_counter() - committed) * 1000)
        # each reader's delay is from the commit; the polling reader searched after the listening one: its own
        # figure is what it needed once it began (the listening reader's time is subtracted)
        result = {"people": args.people, "searches_each": args.searches, "writes": args.writes,
                  "identify_ms": {k: pct(v) for k, v in timings.items()},
                  "visible_after_ms": {"listening": pct(seen["listening"]),
                                       "polling": pct([p - q for p, q in zip(seen["polling"], seen["listening"])])}}
    finally:
        for s in services:
            s.close()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
