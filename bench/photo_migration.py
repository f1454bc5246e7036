"""How long `faceshot photos migrate` takes for a gallery of --photos photos, to the database and back (issue 30).

A fresh deployment (a new PostgreSQL schema, or a SQLite file with --sqlite) with --photos people of one photo each:
real LFW photos (tests/fixtures/lfw, cycled; ~15 KB JPEGs) with random embeddings (the migration never looks at
them). Then `migrate_photos` (what the command runs) to the database, and back to the folder, each timed, each
checked: every face's photo is where it should be with its bytes unchanged.

    PYTHONPATH=. .venv/bin/python bench/photo_migration.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--postgres", help="a PostgreSQL URL (a schema is made and dropped)")
    ap.add_argument("--sqlite", action="store_true", help="a SQLite file instead")
    ap.add_argument("--photos", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args()
    if not args.postgres and not args.sqlite:
        ap.error("--postgres URL or --sqlite")

    from sqlalchemy import create_engine, select, text

    from app.core.config import Settings
    from app.core.tables import Face, StoredPhoto
    from app.gallery.photo_migration import migrate_photos
    from app.inference.runner import PreparedFace
    from app.service import FaceService
    from app.startup import prepare_deployment
    from models.pipeline import FacePipeline

    data = Path(tempfile.mkdtemp(prefix="faceshot-photo-migration-"))
    schema, admin = None, None
    if args.postgres:
        schema = f"faceshot_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{args.postgres}{'&' if '?' in args.postgres else '?'}options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{data / 'faceshot.db'}"
    try:
        settings = Settings(data_dir=data / "data", database_url=url, admin_key="b" * 32)
        db, _ = prepare_deployment(settings)
        pipeline = FacePipeline.from_spec("dlib", "cpu")
        service = FaceService(settings, pipeline, db)
        service.gallery_sync.reload()
        jpegs = sorted((ROOT / "tests" / "fixtures" / "lfw").glob("*/*.jpg"))
        rng = np.random.default_rng(0)
        dim = pipeline.encoder.metadata.embedding_size
        t0 = time.perf_counter()
        for i in range(args.photos):
            photo = jpegs[i % len(jpegs)].read_bytes()
            v = rng.normal(size=dim).astype(np.float32)
            face = PreparedFace(embedding=v / np.linalg.norm(v), box=[0, 0, 1, 1], det_score=1.0, quality={},
                                image_bytes=photo, image_type="image/jpeg")
            service.people.enroll(f"person {i}", [face], new_person=True)
        made = time.perf_counter() - t0
        with db.sessions() as session:
            names = {f: service.photos.read(f) for f in session.execute(select(Face.image_file)).scalars()}
        size = sum(len(b) for b in names.values())
        result = {"database": "postgresql" if args.postgres else "sqlite", "photos": len(names),
                  "bytes": size, "enrolled_s": round(made, 1)}
        for to in ("database", "folder"):
            t0 = time.perf_counter()
            summary = migrate_photos(db.sessions, settings.images_dir, to, batch=args.batch)
            took = time.perf_counter() - t0
            with db.sessions() as session:
                rows = set(session.execute(select(StoredPhoto.name)).scalars())
            files = {p.name for p in settings.images_dir.glob("*.img")}
            where = rows if to == "database" else files
            intact = all(service.photos.read(n) == b for n, b in names.items())
            result[f"to_{to}"] = {"seconds": round(took, 2), "photos_per_s": round(len(names) / took, 1),
                                  "moved": summary.moved, "missing": len(summary.missing),
                                  "corrupt": len(summary.corrupt), "all_there": where == set(names),
                                  "other_store_empty": not (files if to == "database" else rows), "intact": intact}
        service.close()
    finally:
        if admin is not None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
