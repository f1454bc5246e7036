"""A 150 MB JSON photo body against a worker: its peak memory growth and /health's slowest answer meanwhile.

Issue 26, point 1. Starts `faceshot serve` (one worker, SQLite, a fresh data directory) from this tree and from
``--ref`` (a git revision checked out into a temporary worktree and imported ahead of the venv's install), and
alternates them ``--rounds`` times in one run (this machine is noisy); each round is a fresh server.

    PYTHONPATH=. .venv/bin/python bench/json_body_pressure.py --ref 251fb11 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from app.testing.body_pressure import json_body_pressure
from app.testing.server import ADMIN, ROOT, Server


def serve(tree: Path, data_dir: Path) -> Server:
    server = Server(data_dir)
    # the tree's own code: its app.cli run with the tree first on sys.path (ahead of the cwd and the venv's install)
    server.start(wrapper=[sys.executable, "-c", f"import sys, runpy; sys.path.insert(0, {str(tree)!r}); "
                          "sys.argv = sys.argv[1:]; runpy.run_module('app.cli', run_name='__main__')"])
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", required=True, help="the git revision to compare with (e.g. the commit before)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--mb", type=int, default=150, help="the body's size (default: 150)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    work = Path(tempfile.mkdtemp(prefix="faceshot-json-pressure-"))
    ref_tree = work / "ref"
    subprocess.run(["git", "worktree", "add", "--detach", str(ref_tree), args.ref], cwd=ROOT, check=True,
                   capture_output=True)
    results: dict[str, list[dict]] = {"ref": [], "this tree": []}
    print(json.dumps({"ref": args.ref, "mb": args.mb, "rounds": args.rounds, "torch_threads": 1}), flush=True)
    try:
        for i in range(args.rounds):
            for label, tree in (("ref", ref_tree), ("this tree", ROOT)):
                server = serve(tree, work / f"{label.replace(' ', '-')}-{i}")
                try:
                    r = json_body_pressure(server.url, ADMIN, server.proc.pid, total_mb=args.mb)
                finally:
                    server.stop()
                results[label].append(asdict(r))
                print(json.dumps({"round": i, "tree": label, **asdict(r)}), flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(ref_tree)], cwd=ROOT, capture_output=True)
    for label, rows in results.items():
        print(f"{label}: status {sorted({r['status'] for r in rows})}, /health slowest "
              f"{max(r['health_max_s'] for r in rows):.2f} s, peak RSS growth "
              f"{max((r['peak_rss_growth_mb'] or 0) for r in rows):.0f} MB, answered after "
              f"{min(r['seconds'] for r in rows):.1f}-{max(r['seconds'] for r in rows):.1f} s")


if __name__ == "__main__":
    main()
