"""`faceshot compare` and POST /compare: one rule (models.operating_point.one_to_one_threshold), one set of fields."""

from __future__ import annotations

import json

from app.cli import main

from .conftest import upload

FIELDS = ("match", "distance", "threshold", "threshold_source", "stranger_accept_rate")


def _cli(capsys, a, b) -> dict:
    assert main(["compare", str(a), str(b), "--device", "cpu"]) == 0
    return json.loads(capsys.readouterr().out)


def _api(client, a, b) -> dict:
    r = client.post("/api/v1/compare", files=[upload(a, "image_a"), upload(b, "image_b")])
    assert r.status_code == 200, r.text
    return r.json()


def test_the_cli_and_the_api_give_one_verdict_by_one_rule(make_client, tmp_path, photos, capsys, monkeypatch):
    """Two photos of one man at distance 0.37: between the checkpoint's fixed 0.3505 (the CLI's rule before) and the
    one-comparison threshold at FACESHOT_TARGET_FAR (0.4245, the API's): the CLI said no, the API yes."""
    for name in ("FACESHOT_THRESHOLD", "FACESHOT_TARGET_FAR"):
        monkeypatch.delenv(name, raising=False)
    a, b = photos["Padraig_Harrington"][:2]
    api, cli = _api(make_client(tmp_path / "data"), a, b), _cli(capsys, a, b)
    assert {k: cli[k] for k in FIELDS} == {k: api[k] for k in FIELDS}
    assert cli["match"] is True and cli["threshold_source"] == "FACESHOT_TARGET_FAR"
    assert cli["distance"] < cli["threshold"] and cli["encoder"]["content_hash"] == api["encoder"]["content_hash"]

    # the same settings move both alike: a fixed FACESHOT_THRESHOLD below the pair's distance
    monkeypatch.setenv("FACESHOT_THRESHOLD", "0.36")
    api, cli = _api(make_client(tmp_path / "fixed", threshold=0.36), a, b), _cli(capsys, a, b)
    assert {k: cli[k] for k in FIELDS} == {k: api[k] for k in FIELDS}
    assert (cli["match"], cli["threshold"], cli["threshold_source"]) == (False, 0.36, "FACESHOT_THRESHOLD")
