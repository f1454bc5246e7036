"""The open-set protocol's numbers mean what they say."""

import json

import numpy as np

from app.cli import main as cli_main
from models.evaluation.openset import embedded_photos, run_protocol, threshold_at_far


def synthetic(n_people=30, photos=4, dim=16, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    files, vectors = {}, {}
    for p in range(n_people):
        centre = rng.normal(size=dim)
        centre /= np.linalg.norm(centre)
        files[f"p{p}"] = [f"p{p}/{i}.jpg" for i in range(photos)]
        for f in files[f"p{p}"]:
            vectors[f] = centre + noise * rng.normal(size=dim)
    return files, vectors


def test_threshold_at_far_accepts_at_most_that_fraction():
    d = np.linspace(0, 1, 1000)
    t = threshold_at_far(d, 0.01)
    assert (d <= t).mean() <= 0.01 and (d <= t).sum() == 10


def test_separable_people_score_perfectly():
    files, vectors = synthetic()
    summary = run_protocol(embedded_photos(files, vectors), k=5, shots=(1, 2), seeds=2, threshold=0.5)
    for s in (1, 2):
        m = summary[s]["mean"]
        assert m["rank1"] == 1.0 and m["balanced_accuracy"] == 1.0
        assert m["stranger_queries"] == 25 * 2


def test_failed_detections_count_against_known_and_for_rejection():
    files, vectors = synthetic()
    for p in range(30):
        vectors[f"p{p}/3.jpg"] = None  # one photo per person without a face
    summary = run_protocol(embedded_photos(files, vectors), k=5, shots=(1,), seeds=1, threshold=0.5)
    m = summary[1]["mean"]
    assert m["failures_known"] > 0 and m["rank1"] < 1.0
    assert m["strangers_rejected"] == 1.0


def test_cli_eval_openset_on_fixture_photos(lfw_dir, tmp_path, capsys):
    out = tmp_path / "report.json"
    plot = tmp_path / "dir_far.png"
    code = cli_main([
        "eval-openset", str(lfw_dir), "--k", "4", "--shots", "1", "2", "--seeds", "2", "--device", "cpu",
        "--cache-dir", str(tmp_path / "cache"), "--json", str(out), "--plot", str(plot), "--quiet",
    ])
    assert code == 0
    report = json.loads(out.read_text())
    assert set(report["results"]) == {"1", "2"}
    assert report["results"]["1"]["mean"]["rank1"] >= 0.75
    assert report["latency_ms"]["p50"] > 0
    assert plot.stat().st_size > 10_000
    assert "DIR@FAR=1%" in capsys.readouterr().out
    # a second run is served from the cache: same numbers
    cli_main(["eval-openset", str(lfw_dir), "--k", "4", "--seeds", "2", "--device", "cpu",
              "--cache-dir", str(tmp_path / "cache"), "--json", str(out), "--quiet"])
    again = json.loads(out.read_text())
    assert again["results"] == report["results"]


def test_cli_sweeps_gallery_sizes_at_the_services_decision(lfw_dir, tmp_path, capsys):
    out, plot = tmp_path / "sweep.json", tmp_path / "far_vs_k.png"
    code = cli_main(["eval-openset", str(lfw_dir), "--k", "2", "4", "8", "--shots", "1", "--seeds", "2",
                     "--compare-fixed", "--device", "cpu", "--cache-dir", str(tmp_path / "cache"), "--quiet",
                     "--json", str(out), "--plot", str(plot)])
    assert code == 0
    report = json.loads(out.read_text())
    rows = {(r["decision"], r["K"]): r for r in report["sweep"]}
    assert report["decision"] == "gallery" and report["target_far"] == 0.01
    # the gallery-aware threshold tightens with K; the fixed one does not move
    t = [rows[("gallery", k)]["mean"]["threshold"] for k in (2, 4, 8)]
    assert t[0] > t[1] > t[2]
    assert len({rows[("fixed", k)]["mean"]["threshold"] for k in (2, 4, 8)}) == 1
    assert plot.stat().st_size > 10_000 and "strangers accepted" in capsys.readouterr().out
    # one side of the identity split only
    cli_main(["eval-openset", str(lfw_dir), "--identities", "val", "--k", "2", "--shots", "1", "--seeds", "1",
              "--device", "cpu", "--cache-dir", str(tmp_path / "cache"), "--quiet", "--json", str(out)])
    assert json.loads(out.read_text())["identities"]["people"] < len([d for d in lfw_dir.iterdir() if d.is_dir()])
