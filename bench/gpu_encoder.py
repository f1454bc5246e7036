"""Encoder and pipeline speed on this machine's accelerator (or CPU).

Embedding throughput of aligned chips at batch 1, 8, 64 and 256 (fp32 and fp16) of any encoder
the service can run, ensembles included (each member gets chips of its own input size),
and median end-to-end latency of one photo (decode + detect + align + embed).

    python bench/gpu_encoder.py --photos DIR_OF_JPEGS [--device cuda] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from models.encoders.sources import load_encoder
from models.imageio import load_image
from models.pipeline import FacePipeline


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def random_chips(enc, batch: int):
    """Chips of the encoder's input size on its device; an ensemble takes one set per member."""
    if hasattr(enc, "members"):
        return [random_chips(m, batch) for m in enc.members]
    size = enc.input_size
    return torch.randint(0, 255, (batch, size, size, 3), dtype=torch.uint8, device=enc.device)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", required=True)
    ap.add_argument("--device", default=None)
    ap.add_argument("--encoder", default="dlib", help="any FACESHOT_ENCODER value, ensembles included")
    ap.add_argument("--json", default=None)
    ap.add_argument("--seconds", type=float, default=3.0, help="time budget per measurement")
    args = ap.parse_args()

    report: dict = {"torch": torch.__version__}
    for fp16 in (False, True):
        enc = load_encoder(args.encoder, args.device, fp16=fp16)
        for network in getattr(enc, "members", [enc]):
            network.batch_size = 1024  # measure the batch asked for, not the service's chunking
        if fp16 and enc.device.type != "cuda":
            continue
        report["device"] = str(enc.device) + (f" ({torch.cuda.get_device_name()})" if enc.device.type == "cuda" else "")
        for batch in (1, 8, 64, 256):
            chips = random_chips(enc, batch)
            for _ in range(5):
                enc.embed(chips)
            sync(enc.device)
            times = []
            deadline = time.perf_counter() + args.seconds
            while time.perf_counter() < deadline or len(times) < 10:
                t0 = time.perf_counter()
                enc.embed(chips)  # includes the copy of embeddings back to the host
                sync(enc.device)
                times.append(time.perf_counter() - t0)
            med = float(np.median(times))
            report[f"embed_b{batch}_{'fp16' if fp16 else 'fp32'}"] = {
                "median_ms": round(med * 1000, 3),
                "faces_per_s": round(batch / med, 1),
            }
    pipe = FacePipeline(load_encoder(args.encoder, args.device))
    files = sorted(Path(args.photos).rglob("*.jpg"))[:200]
    images = [p.read_bytes() for p in files]
    for data in images[:5]:
        pipe.analyze(load_image(data))
    lat = []
    for data in images:
        t0 = time.perf_counter()
        pipe.analyze(load_image(data))
        sync(pipe.encoder.device)
        lat.append(time.perf_counter() - t0)
    report["photo_latency_ms"] = {
        "photos": len(lat),
        "p50": round(float(np.median(lat)) * 1000, 2),
        "p95": round(float(np.percentile(lat, 95)) * 1000, 2),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
