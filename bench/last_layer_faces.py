"""Can retraining only the last layer of dlib's ResNet on lfw-dev's training identities beat it?

The cheapest fine-tuning there is: the network up to its pooled 256-d features stays
frozen (computed once per chip and its mirror image), and only the final 256 -> 128
layer is trained, or a 128 x 128 map after it (initialised to the identity), with
pytorch-metric-learning's triplet loss (semi-hard mining), its contrastive loss with
margins either side of the service's threshold (same-person pairs pulled inside 0.25,
different people pushed beyond 0.45), or prototypical 1-shot episodes, under Adam or SGD. Every few steps the
open-set protocol runs on the
held-out validation identities (same split rule and seed as ``faceshot train``),
next to the untouched encoder, with the threshold calibrated there at FAR 1%.
``best_bal`` is the best balanced accuracy at any threshold (an upper bound).

    .venv/bin/python -m models.fewshot.cli prepare-faces ../shared/data/lfw-dev --cache-dir CHIPS --workers 2
    .venv/bin/python bench/last_layer_faces.py CHIPS [--steps 600] [--every 200]

Features take ~3 min on one core; each run seconds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pytorch_metric_learning import distances, losses, miners

from models.encoders.sources import dlib_checkpoint
from models.evaluation.openset import EmbeddedPhotos, calibrate_threshold, run_protocol
from models.fewshot.backbones import EncoderBackbone
from models.fewshot.evaluate import gallery_of
from models.identities import split_identities


@torch.no_grad()
def pooled_features(chips: Path) -> tuple[torch.Tensor, np.ndarray, list[str], torch.Tensor]:
    """(N, 2, 256) pooled features of every chip and its mirror image, labels, names, dlib's last layer."""
    backbone = EncoderBackbone.from_checkpoint(dlib_checkpoint()).eval()
    last = backbone.encoder.fc.weight.detach().clone()
    backbone.encoder.fc = torch.nn.Identity()
    files = sorted(chips.glob("*/*.png"))
    names = sorted({p.parent.name for p in files})
    index = {n: i for i, n in enumerate(names)}
    out = torch.zeros(len(files), 2, 256)
    for start in range(0, len(files), 64):
        batch = files[start : start + 64]
        x = torch.stack(
            [torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1) for p in batch]
        ).float()
        f = backbone(torch.cat([x, x.flip(3)]))
        out[start : start + len(batch), 0], out[start : start + len(batch), 1] = f[: len(batch)], f[len(batch) :]
    return out, np.array([index[p.parent.name] for p in files]), names, last


class Experiment:
    def __init__(self, feats, labels, names, last, val_fraction=0.3, split_seed=0):
        self.feats, self.labels, self.names, self.last = feats, labels, names, last
        self.train_names, self.val_names = split_identities(names, val_fraction, split_seed)

    def embed(self, weight: torch.Tensor) -> torch.Tensor:
        """As the service embeds: each view normalised, summed, normalised."""
        a, b = (F.normalize(self.feats[:, i] @ weight.T, dim=1) for i in (0, 1))
        return F.normalize(a + b, dim=1)

    def rows_of(self, subset) -> dict[int, list[int]]:
        keep = {self.names.index(n) for n in subset}
        by: dict[int, list[int]] = {}
        for i, lab in enumerate(self.labels):
            if lab in keep:
                by.setdefault(int(lab), []).append(i)
        return by

    def val_gallery(self, embeddings: np.ndarray) -> EmbeddedPhotos:
        """The open-set protocol's gallery of the validation identities' photos."""
        rows = [i for r in self.rows_of(self.val_names).values() for i in r]
        return gallery_of(embeddings[rows], self.labels[rows], self.names)

    def report(self, weight: torch.Tensor) -> dict:
        g = self.val_gallery(self.embed(weight).numpy())
        threshold = calibrate_threshold(g, far=0.01)
        summary = run_protocol(g, k=50, shots=(1, 2), seeds=5, threshold=threshold)
        out = {}
        for s in (1, 2):
            m = summary[s]["mean"]
            best = []
            for q_dist, correct, s_dist in summary[s]["curves"]:
                ts = np.quantile(s_dist, np.linspace(0.001, 0.2, 200))
                best.append(max(((correct & (q_dist <= t)).mean() + (s_dist > t).mean()) / 2 for t in ts))
            out[f"S={s}"] = {
                "rank1": round(m["rank1"], 4),
                "dir@far=0.01": round(m["dir@far=0.01"], 4),
                "balanced_accuracy": round(m["balanced_accuracy"], 4),
                "best_bal": round(float(np.mean(best)), 4),
                "threshold": round(threshold[s], 4),
            }
        return out

    def train(
        self, loss: str, optimizer: str, param: str, lr: float, steps: int, every: int, p: int = 32, seed: int = 0
    ):
        rng = np.random.default_rng(seed)
        pools = [rows for rows in self.rows_of(self.train_names).values() if len(rows) >= 2]
        a = (self.last.clone() if param == "last" else torch.eye(self.last.shape[0])).requires_grad_()

        def weight():
            return a if param == "last" else a @ self.last

        log_scale = torch.tensor(np.log(10.0), dtype=torch.float32, requires_grad=True)
        opt = (
            torch.optim.Adam([a, log_scale], lr=lr)
            if optimizer == "adam"
            else torch.optim.SGD([a, log_scale], lr=lr, momentum=0.9)
        )
        cosine = distances.CosineSimilarity()
        triplet = losses.TripletMarginLoss(margin=0.2, distance=cosine)
        miner = miners.TripletMarginMiner(margin=0.2, type_of_triplets="semihard", distance=cosine)
        contrastive = losses.ContrastiveLoss(pos_margin=0.25, neg_margin=0.45)  # Euclidean, on unit vectors
        for step in range(1, steps + 1):
            rows, labs = [], []
            for j, c in enumerate(rng.choice(len(pools), p, replace=False)):
                rows += list(rng.choice(pools[c], 2, replace=False))
                labs += [j, j]
            views = torch.from_numpy(rng.integers(0, 2, len(rows)))
            e = F.normalize(self.feats[torch.tensor(rows), views] @ weight().T, dim=1)
            labels = torch.tensor(labs)
            if loss == "triplet":
                value = triplet(e, labels, miner(e, labels))
            elif loss == "contrastive":
                value = contrastive(e, labels)
            else:  # prototypical, 1-shot: the first photo of each pair is the support, the second the query
                logits = -log_scale.exp() * torch.cdist(e[1::2], e[0::2]) ** 2
                value = F.cross_entropy(logits, torch.arange(p))
            opt.zero_grad()
            value.backward()
            opt.step()
            if step % every == 0:
                with torch.no_grad():
                    yield step, self.report(weight().detach())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("chips", type=Path, help="a chip cache made by `faceshot prepare-faces` (dlib's template)")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--every", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="write every line as JSON here too")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    exp = Experiment(*pooled_features(args.chips))
    print(f"{len(exp.train_names)} training identities, {len(exp.val_names)} validation identities", flush=True)
    lines = []

    def emit(tag: str, report: dict) -> None:
        lines.append({"run": tag, **report})
        cells = " | ".join(
            f"{s}: rank-1 {r['rank1']:.3f} DIR@1% {r['dir@far=0.01']:.3f} bal {r['balanced_accuracy']:.3f} "
            f"best {r['best_bal']:.3f} t {r['threshold']:.3f}"
            for s, r in report.items()
        )
        print(f"{tag:38} {cells}", flush=True)

    with torch.no_grad():
        emit("untouched", exp.report(exp.last))
    for loss in ("triplet", "protonet", "contrastive"):
        for optimizer, param, lr in (
            ("adam", "last", 1e-6),
            ("sgd", "last", 1e-2),
            ("adam", "map", 1e-4),
            ("sgd", "map", 1e-2),
        ):
            for step, report in exp.train(loss, optimizer, param, lr, args.steps, args.every):
                emit(f"{loss} {optimizer} {param} lr={lr:g} step {step}", report)
    if args.out:
        args.out.write_text(json.dumps(lines, indent=1))


if __name__ == "__main__":
    main()
