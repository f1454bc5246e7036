"""Collect bench/train_all.sh's JSON files into OUT/results.json and print them as tables."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def main(out: Path) -> None:
    results: dict = {"omniglot": {}, "faces": {}}
    print("Omniglot: accuracy on 60 unseen characters (mean ± 95% CI over episodes); Lake 20-way one-shot error")
    print(f"{'method':12} {'5w1s':>15} {'5w5s':>15} {'20w1s':>15} {'20w5s':>15} {'Lake err':>10}")
    for name, files in {
        "protonet": ["omniglot_protonet"],
        "fomaml": ["omniglot_fomaml5", "omniglot_fomaml20"],
        "matching": ["omniglot_matching"],
    }.items():
        row: dict = {}
        for f in files:
            r = load(out / f"{f}.json")
            if not r:
                continue
            for e in r.get("episodes", []):
                if "accuracy" in e:
                    row[f"{e['n_way']}-way {e['n_shot']}-shot"] = {
                        "accuracy": e["accuracy"],
                        "ci95": e["ci95"],
                        "episodes": e["episodes"],
                    }
            if "error_rate" in r.get("lake", {}):
                row["lake_20way_oneshot_error"] = r["lake"]["error_rate"]
        results["omniglot"][name] = row

        def cell(key, row=row):
            v = row.get(key)
            return f"{100 * v['accuracy']:.2f}±{100 * v['ci95']:.2f}" if v else "-"

        lake = row.get("lake_20way_oneshot_error")
        print(
            f"{name:12} {cell('5-way 1-shot'):>15} {cell('5-way 5-shot'):>15} {cell('20-way 1-shot'):>15} "
            f"{cell('20-way 5-shot'):>15} {'-' if lake is None else f'{100 * lake:.2f}%':>10}"
        )

    print("\nFaces: lfw-dev validation identities, open-set K=50 (mean ± std over 5 seeds)")
    print(
        f"{'encoder':18} {'S':>2} {'rank-1':>14} {'DIR@FAR1%':>14} {'DIR@FAR10%':>14} {'balanced acc':>14} "
        f"{'5w1s episodes':>15}"
    )
    for name in ("dlib_untouched", "triplet", "protonet", "contrastive_last"):
        r = load(out / f"faces_{name}.json")
        if not r:
            continue
        entry = {"episodes": r.get("episodes"), "open_set": {}}
        export = load(out / f"faces_{name}_export.json")
        if export:
            entry["export"] = export
        ep = next((e for e in r.get("episodes", []) if "accuracy" in e), None)
        for s in ("S=1", "S=2"):
            m, sd = r["open_set"][s]["mean"], r["open_set"][s]["std"]
            keys = (
                "rank1",
                "dir@far=0.01",
                "dir@far=0.1",
                "balanced_accuracy",
                "known_named",
                "strangers_rejected",
                "threshold",
            )
            entry["open_set"][s] = {k: {"mean": m[k], "std": sd[k]} for k in keys}

            def c(k, m=m, sd=sd):
                return f"{100 * m[k]:.2f}±{100 * sd[k]:.2f}"

            epi = f"{100 * ep['accuracy']:.2f}±{100 * ep['ci95']:.2f}" if ep and s == "S=1" else ""
            print(
                f"{name:18} {s[2:]:>2} {c('rank1'):>14} {c('dir@far=0.01'):>14} {c('dir@far=0.1'):>14} "
                f"{c('balanced_accuracy'):>14} {epi:>15}"
            )
        results["faces"][name] = entry
    timings = out / "timings.txt"
    if timings.exists():
        results["timings_s"] = {
            line.split()[0]: int(line.split()[1].rstrip("s"))
            for line in timings.read_text().splitlines()
            if line.strip()
        }
    (out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
