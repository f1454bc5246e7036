"""The re-layout of issue 27 changed no byte of the API: every path, operation and schema of the document served
by the commit before the move is, serialised, exactly what the service serves now. Later issues may add to the
document; what was there stays as it was."""

import json
import subprocess
import sys
import tarfile
from io import BytesIO
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BEFORE_THE_MOVE = "434efbc"  # the last commit before issue 27 moved app/ and models/

# Run in a tree's root (first on sys.path): its create_app, its /openapi.json, as the server serves it.
DUMP = """
import json, sys, tempfile
from pathlib import Path
try:
    from app.core.config import Settings
except ImportError:  # the layout before the move
    from app.config import Settings
from app.main import create_app
app = create_app(Settings(data_dir=Path(tempfile.mkdtemp())))
assert Path(sys.modules["app"].__file__).parent == Path.cwd() / "app", "not the tree asked for"
sys.stdout.write(json.dumps(app.openapi()))
"""


def openapi_of(tree: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", DUMP], cwd=tree, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def tree_of(commit: str, into: Path) -> Path:
    try:
        archive = subprocess.run(["git", "archive", commit, "app", "models"], cwd=ROOT, capture_output=True,
                                 check=True, timeout=60).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"the commit before the move ({commit}) is not in this clone (a shallow clone?): {exc}")
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def parts(doc: dict, like: dict) -> dict[str, str]:
    """``doc``'s info, and each path and component that ``like`` has, serialised as served (None: missing)."""
    out = {"info": json.dumps(doc["info"])}
    out.update({f"path {p}": json.dumps(doc["paths"].get(p)) for p in like["paths"]})
    for kind, items in like["components"].items():
        out.update({f"{kind} {name}": json.dumps(doc["components"].get(kind, {}).get(name)) for name in items})
    return out


@pytest.mark.slow  # two trees' apps built in subprocesses
def test_the_document_before_the_move_is_served_unchanged(tmp_path):
    before = openapi_of(tree_of(BEFORE_THE_MOVE, tmp_path))
    now = openapi_of(ROOT)
    assert len(before["paths"]) > 40 and before["components"]["schemas"]  # the old tree served a whole API
    assert parts(now, before) == parts(before, before)
