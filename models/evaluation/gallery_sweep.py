"""The stranger-accept rate measured at the service's own decision, across gallery sizes (`eval-openset --k ...`).

For each K and shot count S, the open-set protocol runs with the threshold the
service would use for a gallery of K people enrolled with S photos each: the
gallery-aware operating point (:mod:`models.operating_point`) when the encoder (or
``--calibration``) carries distance distributions, else the checkpoint's fixed
threshold. The fixed thresholds can be measured beside it, to show the drift.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from models.calibration import Calibration, shot_class
from models.evaluation.openset import EmbeddedPhotos, run_protocol
from models.operating_point import operating_point

Decision = Callable[[int, int], float]  # (K, S) -> distance threshold


def gallery_aware(cal: Calibration, target_far: float) -> Decision:
    """The service's threshold for K people enrolled with S photos each."""
    def decide(k: int, s: int) -> float:
        return operating_point(cal, target_far, {shot_class(s): k}).threshold_for(s)

    return decide


def fixed(thresholds: dict[int, float] | Callable[[int], float]) -> Decision:
    """One threshold per shot count whatever the gallery's size (the behaviour before gallery-aware decisions)."""
    return lambda k, s: thresholds[s] if isinstance(thresholds, dict) else thresholds(s)


KEYS = ("stranger_accept_rate", "known_named", "balanced_accuracy", "dir@far=0.01", "rank1", "threshold",
        "known_queries", "stranger_queries")


def sweep(g: EmbeddedPhotos, ks: Sequence[int], shots: Sequence[int], seeds: int,
          decisions: dict[str, Decision]) -> list[dict]:
    """One row per (decision, S, K): the figures' mean and std over seeds; K too large for the data is skipped."""
    rows = []
    for label, decide in decisions.items():
        for s in shots:
            for k in ks:
                try:
                    summary = run_protocol(g, k=k, shots=(s,), seeds=seeds, threshold=decide)[s]
                except ValueError as exc:  # not enough people for this K
                    rows.append({"decision": label, "S": s, "K": k, "skipped": str(exc)})
                    continue
                rows.append({"decision": label, "S": s, "K": k,
                             "mean": {key: summary["mean"][key] for key in KEYS},
                             "std": {key: summary["std"][key] for key in KEYS}})
    return rows


def format_sweep(rows: list[dict], target_far: float | None) -> str:
    lines = [f"{'decision':>11} {'S':>2} {'K':>5} {'target':>7} {'strangers accepted':>20} {'known named':>12} "
             f"{'balanced':>9} {'DIR@1%':>7} {'threshold':>9} {'strangers':>9}"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"{r['decision']:>11} {r['S']:>2} {r['K']:>5}  skipped: {r['skipped']}")
            continue
        m, sd = r["mean"], r["std"]
        target = f"{target_far:.2%}" if target_far is not None and r["decision"] == "gallery" else "-"
        lines.append(
            f"{r['decision']:>11} {r['S']:>2} {r['K']:>5} {target:>7} "
            f"{m['stranger_accept_rate']:>12.2%} ± {sd['stranger_accept_rate']:.2%} {m['known_named']:>12.3f} "
            f"{m['balanced_accuracy']:>9.3f} {m['dir@far=0.01']:>7.3f} {m['threshold']:>9.4f} "
            f"{m['stranger_queries']:>9.0f}")
    return "\n".join(lines)


def plot_sweep(rows: list[dict], target_far: float | None, out: str | Path, title: str = "") -> None:
    """Measured stranger-accept rate against K, per decision and S, with the target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    series: dict[tuple[str, int], list[tuple[int, float, float]]] = {}
    for r in rows:
        if "skipped" not in r:
            series.setdefault((r["decision"], r["S"]), []).append(
                (r["K"], r["mean"]["stranger_accept_rate"], r["std"]["stranger_accept_rate"]))
    for (label, s), pts in sorted(series.items()):
        k, m, sd = (np.array(v) for v in zip(*sorted(pts)))
        ax.errorbar(k, m, yerr=sd, marker="o" if label == "gallery" else "s", capsize=3,
                    ls="-" if label == "gallery" else "--", label=f"{label} thresholds, S={s}")
    if target_far is not None:
        ax.axhline(target_far, color="grey", lw=1, ls=":", label=f"target {target_far:.0%}")
        ax.axhspan(target_far / 2, target_far * 2, color="grey", alpha=0.08)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("K: people enrolled")
    ax.set_ylabel("strangers named as someone (measured)")
    ax.set_title(f"{title}: measured stranger-accept rate vs gallery size", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
