"""The long fuzz run of the upload endpoints: N malformed photos, a count of answers by status.

The same seeded generator as ``tests/fuzz`` (the test sends 90 cases; this sends as
many as asked), through the real app in-process (lifespan, middleware and all) with
the offline default encoder. Any 5xx or unhandled exception is printed with the
case's label (seed photo + mutation) so it can be rebuilt and added to the test's
REGRESSIONS; the exit status is 1 if there was one.

    .venv/bin/python bench/fuzz_uploads.py --cases 2000 --seed 1
    .venv/bin/python bench/fuzz_uploads.py --cases 2000 --seed 1 --database-url postgresql+psycopg://.../fresh
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from app.core.config import Settings  # noqa: E402
from app.main import create_app  # noqa: E402
from app.testing.malformed_uploads import assert_error_shape, cases  # noqa: E402

ADMIN = "fuzz-bench-admin-key-0123456789"
ENDPOINTS = ("identify", "detect", "enroll", "verify", "faces")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-seconds", type=float, default=3600, help="stop early after this long (bounded run)")
    ap.add_argument("--json", type=Path, help="write the counts here")
    ap.add_argument("--database-url", default=None, help="a fresh database to run against (default: SQLite in a "
                                                         "temporary folder); e.g. PostgreSQL's")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data",
            admin_key=ADMIN,
            max_upload_bytes=2_000_000,
            store_images=False,
            torch_threads=1,
            **({"database_url": args.database_url} if args.database_url else {}),
        )
        with TestClient(create_app(settings)) as client:
            client.headers["X-API-Key"] = ADMIN
            seed_photo = next(iter(sorted((ROOT / "tests/fixtures/lfw").glob("*/*.jpg")))).read_bytes()
            person = client.post(
                "/api/v1/enroll", data={"name": "Seed"}, files=[("images", ("s.jpg", seed_photo, "image/jpeg"))]
            ).json()["person"]["id"]
            counts: collections.Counter = collections.Counter()
            codes: collections.Counter = collections.Counter()
            failures = []
            start = time.monotonic()
            rng = np.random.default_rng(args.seed)
            tried = 0
            for i, (label, data) in enumerate(cases(rng, args.cases)):
                if time.monotonic() - start > args.max_seconds:
                    break
                endpoint = ENDPOINTS[i % len(ENDPOINTS)]
                files = [("image", ("f", data, "application/octet-stream"))]
                try:
                    if endpoint == "enroll":
                        r = client.post(
                            "/api/v1/enroll",
                            data={"name": "Fuzz"},
                            files=[("images", ("f", data, "application/octet-stream"))],
                        )
                    elif endpoint == "verify":
                        r = client.post("/api/v1/verify", data={"person_id": person}, files=files)
                    elif endpoint == "faces":
                        r = client.post(
                            f"/api/v1/people/{person}/faces",
                            files=[("images", ("f", data, "application/octet-stream"))],
                        )
                    else:
                        r = client.post(f"/api/v1/{endpoint}", files=files)
                except Exception as exc:  # the TestClient re-raises what the app did not handle
                    failures.append(f"{endpoint} {label}: unhandled {exc!r}")
                    counts["exception"] += 1
                    tried += 1
                    continue
                tried += 1
                counts[r.status_code] += 1
                if r.status_code >= 500:
                    failures.append(f"{endpoint} {label}: {r.status_code} {r.text[:200]}")
                elif r.status_code >= 400:
                    try:
                        assert_error_shape(r.json())
                        codes[r.json()["error"]["code"]] += 1
                    except AssertionError as exc:
                        failures.append(f"{endpoint} {label}: bad error shape {exc}")
            took = time.monotonic() - start

    report = {
        "cases": tried,
        "seconds": round(took, 1),
        "by_status": {str(k): v for k, v in sorted(counts.items(), key=str)},
        "by_error_code": dict(codes.most_common()),
        "failures": failures,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
