"""What the API offered before the re-layout of issue 27, it still offers: every path and operation of the document
served by the commit before the move, with its parameters, and every schema's fields with their types. The move
itself changed no byte of it (checked at the time); later issues add routes, fields and descriptions, and may
require nothing new of a request that used to work.
"""

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


TEXT = ("description", "title", "examples", "example", "summary")


def shape(schema):
    """A schema without its prose (descriptions, titles, examples): what a client's code depends on."""
    if isinstance(schema, dict):
        return {k: shape(v) for k, v in schema.items() if k not in TEXT}
    if isinstance(schema, list):
        return [shape(v) for v in schema]
    return schema


def broken_promises(before: dict, now: dict) -> list[str]:
    """What a client written against ``before`` would miss in ``now``."""
    broken = []
    for path, operations in before["paths"].items():
        for method, op in operations.items():
            new = now["paths"].get(path, {}).get(method)
            if new is None:
                broken.append(f"{method.upper()} {path} is gone")
                continue
            had = {(p["name"], p["in"]): p for p in op.get("parameters", [])}
            has = {(p["name"], p["in"]): p for p in new.get("parameters", [])}
            broken += [f"{method.upper()} {path}: parameter {k} is gone" for k in had if k not in has]
            broken += [f"{method.upper()} {path}: parameter {k} is required now" for k, p in has.items()
                       if p.get("required") and not had.get(k, {}).get("required")]
            broken += [f"{method.upper()} {path}: answer {code} is gone" for code in op.get("responses", {})
                       if code not in new.get("responses", {})]
    for name, schema in before["components"]["schemas"].items():
        new = now["components"]["schemas"].get(name)
        if new is None:
            broken.append(f"schema {name} is gone")
            continue
        for field, spec in schema.get("properties", {}).items():
            if field not in new.get("properties", {}):
                broken.append(f"schema {name}: field {field} is gone")
            elif shape(new["properties"][field]) != shape(spec):
                broken.append(f"schema {name}: field {field} changed type")
    return broken


@pytest.mark.slow  # two trees' apps built in subprocesses
def test_what_the_api_offered_before_the_move_it_still_offers(tmp_path):
    before = openapi_of(tree_of(BEFORE_THE_MOVE, tmp_path))
    now = openapi_of(ROOT)
    assert len(before["paths"]) > 40 and before["components"]["schemas"]  # the old tree served a whole API
    assert broken_promises(before, now) == []
    # and the check bites: a field dropped from a schema is reported
    del now["components"]["schemas"]["EventOut"]["properties"]["distance"]
    assert broken_promises(before, now) == ["schema EventOut: field distance is gone"]
