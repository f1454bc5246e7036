"""faceshot watch: frames analysed per second on one CPU core, and the delay from a person leaving view to their event.

A clip of ``--people`` people from the data folder crossing the hall one after another (each on
screen ``--on`` seconds, someone always in view except for short gaps) is watched in-process,
every frame analysed (``--fps`` above the clip's rate), one torch thread. Reported: frames/s,
per-frame latency (decode from the file, detect, embed; p50/p95), events, and for each event
the wall time from the moment its track's last frame was analysed to the event being recorded
(the tracker's ``max_gap_s`` in a live stream, plus the decision: measured here as the decision's
own cost, since a file has no wall-clock gaps).

    PYTHONPATH=. .venv/bin/python bench/watch_throughput.py ../shared/data/lfw-dev --people 10
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from app.core.config import Settings
from app.live.tracking import FaceTracker
from app.live.watch import watch
from app.live.watch_local import LocalRecognizer
from app.main import build_service
from app.testing.clips import door_clip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("--people", type=int, default=10)
    ap.add_argument("--on", type=float, default=2.0, help="seconds each person is on screen")
    ap.add_argument("--clip-fps", type=float, default=10)
    ap.add_argument("--fps", type=float, default=100, help="frames analysed per second of video (all, by default)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)

    folders = sorted(p for p in Path(args.data_dir).iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) >= 3)
    people = folders[: args.people]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        service = build_service(Settings(data_dir=tmp / "data", torch_threads=1))
        for person in people:  # enrolled from two photos, seen on the third
            photos = sorted(person.glob("*.jpg"))
            service.people.enroll(person.name.replace("_", " "),
                                  [service.people.prepare(p.read_bytes()) for p in photos[:2]])
        scenes = [(sorted(p.glob("*.jpg"))[2], 0.5 + i * (args.on + 0.6), 0.5 + i * (args.on + 0.6) + args.on)
                  for i, p in enumerate(people)]
        clip = door_clip(scenes, tmp / "hall.avi", fps=args.clip_fps)

        recognizer = LocalRecognizer(service)
        frame_ms, analysed_at, events, delays = [], {}, [], []
        observe = recognizer.observe

        def timed_observe(image, t):
            t0 = time.perf_counter()
            out = observe(image, t)
            frame_ms.append((time.perf_counter() - t0) * 1000)
            analysed_at[round(t, 3)] = time.perf_counter()
            return out

        recognizer.observe = timed_observe
        tracker = FaceTracker()
        def on_event(event):
            events.append(event)

        record = recognizer.record

        def timed_record(event):
            out = record(event)
            last = event.time.timestamp() - start.timestamp() + event.duration_s
            seen = analysed_at.get(round(last, 3)) or max(analysed_at.values())
            delays.append((time.perf_counter() - seen) * 1000)
            return out

        recognizer.record = timed_record
        start = datetime(2026, 12, 2, 8, 0, tzinfo=timezone.utc)
        t0 = time.perf_counter()
        watch(str(clip), recognizer, name="bench", fps=args.fps, start=start, tracker=tracker, on_event=on_event)
        wall = time.perf_counter() - t0
        named, wrong = 0, []
        for e in events:  # the scene whose start is nearest the event's time, and whether the name is its person's
            photo, _, _ = min(scenes, key=lambda sc: abs(sc[1] - _offset(e, start)))
            want, got = photo.parent.name.replace("_", " "), e["person"]["name"] if e["person"] else None
            named += got == want
            if got != want:
                wrong.append({"on_screen": want, "event": got or "unknown", "distance": e["distance"],
                              "threshold": e["threshold"], "at_s": round(_offset(e, start), 2),
                              "frames": e["frames"]})
        report = {"frames": len(frame_ms), "wall_s": round(wall, 2),
                  "frames_per_s_one_core": round(len(frame_ms) / wall, 2),
                  "frame_ms_p50": round(float(np.percentile(frame_ms, 50)), 1),
                  "frame_ms_p95": round(float(np.percentile(frame_ms, 95)), 1),
                  "people_on_screen": len(people), "events": len(events), "events_named_right": named,
                  "not_named_right": wrong,
                  "decision_delay_ms_p50": round(float(np.percentile(delays, 50)), 1) if delays else None,
                  "tracker_max_gap_s": tracker.max_gap_s,
                  "events_list": [(round(_offset(e, start), 1), e["frames"], e["person"]["name"] if e["person"]
                                   else None) for e in events]}
        service.close()
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


def _offset(event, start) -> float:
    return (datetime.fromisoformat(event["time"].replace("Z", "+00:00")) - start).total_seconds()


if __name__ == "__main__":
    main()
