"""``faceshot watch SOURCE``: a camera stream, webcam or video file in, one recognition event per person passing out.

Frames are read with OpenCV (already a dependency of the detector; its wheels carry FFmpeg, so
RTSP, HTTP streams, webcams and files all open the same way, and PyAV would be a second FFmpeg),
sampled at ``fps``, and their faces followed by :class:`app.live.tracking.FaceTracker`. When a track
closes, its best frames decide who it was, against the gallery and its calibrated threshold,
and one event is recorded: in-process (:class:`app.live.watch_local.LocalRecognizer`, the service's own
database) or through a faceshot server (:class:`RemoteRecognizer`: ``/embed`` per frame, ``/identify``
with the track's embedding, ``POST /events``). A stream that drops is reopened with backoff (or, with
``reconnect=False``, ends the watch with :class:`SourceLost`); a file ends.

This module imports no torch and no face pipeline, so a door PC runs ``faceshot watch --server`` from the
light install (requirements-watch.txt); the in-process recognizer, which needs the pipeline, is in
:mod:`app.live.watch_local`.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

from app.core.errors import NotFound, ServiceUnavailable, ValidationFailed
from app.live.events import NewEvent
from app.live.tracking import FaceTracker, Observation, Track, quality_score

log = logging.getLogger(__name__)
CROP_SIZE = 160


class SourceLost(ServiceUnavailable):
    """A camera stream that cannot be opened or stopped sending frames, when it is not to be reopened."""


@dataclass
class Decision:
    person_id: str | None
    name: str | None
    distance: float | None
    threshold: float | None


def crop_around(image: np.ndarray, box) -> np.ndarray:
    """A square crop around the face, at most CROP_SIZE pixels a side (what an event may keep)."""
    from PIL import Image

    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) * 1.4
    h, w = image.shape[:2]
    a, b = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    c, d = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
    crop = Image.fromarray(image[b:d, a:c])
    crop.thumbnail((CROP_SIZE, CROP_SIZE))
    return np.asarray(crop)


def jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(image).save(out, "JPEG", quality=quality)
    return out.getvalue()


class RemoteRecognizer:
    """A faceshot server does the work: ``url`` and a recognition key (app/client.py)."""

    def __init__(self, url: str, key: str, send_faces: bool = False, collection: str | None = None):
        from app.client import FaceshotClient

        self.client = FaceshotClient(url, key, collection=collection)
        self.keeps_crops = send_faces
        self.encoder_hash: str | None = None

    def observe(self, image: np.ndarray, t: float) -> list[Observation]:
        answer = self.client.embed(jpeg(image, 92))
        self.encoder_hash = answer.encoder["content_hash"]
        out = []
        for f in answer.faces:
            face = _Detected(np.asarray(f.box), f.det_score, np.asarray(f.landmarks), f.quality)
            out.append(Observation(t, face.box, np.asarray(f.embedding, dtype=np.float32), quality_score(face),
                                   dict(f.quality), crop_around(image, f.box) if self.keeps_crops else None))
        return out

    def decide(self, embedding: np.ndarray) -> Decision:
        face = self.client.identify(embedding=[float(v) for v in embedding], encoder_hash=self.encoder_hash,
                                    top_k=1).faces[0]
        return Decision(face.person.id if face.person else None, face.person.name if face.person else None,
                        face.distance, face.threshold)

    def record(self, event: NewEvent) -> dict:
        body = {"time": event.time.isoformat(), "source": event.source, "person_id": event.person_id,
                "distance": event.distance, "threshold": event.threshold, "box": event.box,
                "quality": event.quality, "frames": event.frames, "duration_s": event.duration_s,
                "face": base64.b64encode(event.face_crop).decode() if event.face_crop else None}
        if event.embedding is not None and event.encoder_hash:  # kept by the server only as its settings say
            body.update(embedding=[float(v) for v in event.embedding], encoder_hash=event.encoder_hash)
        return self.client.post_event(body).model_dump(mode="json")


@dataclass
class _Detected:  # what quality_score reads, from an /embed answer
    box: np.ndarray
    score: float
    landmarks: np.ndarray
    quality: dict


def _is_stream(source: str) -> bool:
    return source.isdigit() or "://" in source or source.startswith("/dev/")


def check_source(source: str) -> None:
    """A video file that is not there is refused at once (NotFound); streams and webcams are tried when read."""
    from pathlib import Path

    if not _is_stream(source) and not Path(source).exists():
        raise NotFound(f"No video file {source}: give a file, a stream URL (rtsp://, http://) or a webcam "
                       "(0, /dev/video0).", {"source": source})


def _refuse_file(source: str):
    check_source(source)
    raise ValidationFailed(f"{source} is not a video this OpenCV can read (a folder, or a format its FFmpeg "
                           "lacks).", {"source": source})


# FFmpeg follows what a stream tells it: an HTTP "camera" answering with an HLS playlist made the watcher fetch every
# URL the playlist named (internal hosts, file://): a blind SSRF from the door PC. Only these protocols and
# containers are opened: camera streams (RTSP, MJPEG or MPEG-TS over HTTP) and video files; playlists when asked.
FFMPEG_PROTOCOLS = "file,pipe,rtsp,rtsps,rtp,srtp,udp,tcp,tls,http,https,httpproxy"
FFMPEG_CONTAINERS = ("rtsp,sdp,mjpeg,mpjpeg,mpegts,h264,hevc,mpegvideo,m4v,mov,matroska,webm,avi,flv,asf,ogg,"
                     "rawvideo,image2,image2pipe,jpeg_pipe,png_pipe")
PLAYLIST_CONTAINERS = ",hls,dash,concat"
# the variable OpenCV reads, and the operator's own options in it (e.g. rtsp_transport;tcp) as the process started
FFMPEG_OPTIONS = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
_GIVEN_FFMPEG_OPTIONS = os.environ.get(FFMPEG_OPTIONS)


def ffmpeg_options(playlists: bool = False, given: str | None = None) -> str:
    """OpenCV's FFmpeg capture options (OPENCV_FFMPEG_CAPTURE_OPTIONS: ``key;value|key;value``) restricted to the
    protocols and containers above; the operator's own options kept, and their own whitelists winning."""
    options = [o for o in (given or "").split("|") if o]
    keys = {o.split(";", 1)[0] for o in options}
    if "protocol_whitelist" not in keys:
        options.append(f"protocol_whitelist;{FFMPEG_PROTOCOLS}")
    if "format_whitelist" not in keys:
        options.append(f"format_whitelist;{FFMPEG_CONTAINERS}{PLAYLIST_CONTAINERS if playlists else ''}")
    return "|".join(options)


def frames(source: str, fps: float, *, reconnect: bool = True, stop: threading.Event | None = None,
           max_backoff_s: float = 30.0, playlists: bool = False) -> Iterator[tuple[float, np.ndarray]]:
    """(seconds since the start, RGB frame) at most ``fps`` times a second; a dropped stream is reopened.

    A file's time is its own (frame timestamps), so a file is processed as fast as the CPU allows and
    its events carry the times at which things happened in it; a stream's time is the wall clock's.
    """
    import cv2

    stop = stop or threading.Event()
    live = _is_stream(source)
    os.environ[FFMPEG_OPTIONS] = ffmpeg_options(playlists, _GIVEN_FFMPEG_OPTIONS)
    opened_at, backoff, last = time.monotonic(), 1.0, -1e9
    while not stop.is_set():
        cap = cv2.VideoCapture(int(source) if source.isdigit() else source)
        if not cap.isOpened():
            cap.release()
            if not live:
                _refuse_file(source)
            if not reconnect:
                raise SourceLost(f"cannot open {source} (--no-reconnect: not tried again)", {"source": source})
            log.warning("cannot open %s; retrying in %.0f s", source, backoff)
            stop.wait(backoff)
            backoff = min(max_backoff_s, backoff * 2)
            continue
        backoff = 1.0
        while not stop.is_set():
            if not cap.grab():  # cheap: decoded only when kept
                break
            t = (time.monotonic() - opened_at) if live else cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if t - last < 1.0 / fps - 1e-6:
                continue
            ok, bgr = cap.retrieve()
            if not ok:
                break
            last = t
            yield t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        cap.release()
        if not live or stop.is_set():
            return
        if not reconnect:
            raise SourceLost(f"{source} stopped sending frames (--no-reconnect: not reopened)", {"source": source})
        log.warning("%s stopped sending frames; reconnecting", source)


def watch(source: str, recognizer, *, name: str, fps: float = 5.0, start: datetime | None = None,
          tracker: FaceTracker | None = None, on_event: Callable[[dict], None] = lambda e: None,
          stop: threading.Event | None = None, reconnect: bool = True, playlists: bool = False) -> int:
    """Run until the file ends (or ``stop``); returns how many events were recorded. ``playlists``: let FFmpeg
    follow HLS/DASH playlists and concat lists (which name URLs for it to fetch)."""
    tracker = tracker or FaceTracker()
    start = start or datetime.now(timezone.utc)
    count = 0

    def close(tracks: list[Track]) -> None:
        nonlocal count
        for track in sorted(tracks, key=lambda tr: tr.first.time):
            embedding = track.embedding()
            decision = recognizer.decide(embedding)
            best = track.best(1)[0]
            crop = best.crop if best.crop is not None and recognizer.keeps_crops else None
            event = NewEvent(time=start + timedelta(seconds=track.first.time), source=name,
                             person_id=decision.person_id, distance=decision.distance, threshold=decision.threshold,
                             box=[round(float(v), 1) for v in best.box],
                             quality={"score": round(best.quality, 3), **{k: v for k, v in best.details.items()
                                                                          if isinstance(v, (int, float, bool))}},
                             frames=len(track.observations),
                             duration_s=round(track.last.time - track.first.time, 2),
                             face_crop=jpeg(crop) if crop is not None else None,
                             # the server keeps it only as its privacy settings say (FACESHOT_EVENT_FACES)
                             embedding=embedding, encoder_hash=getattr(recognizer, "encoder_hash", None))
            on_event(recognizer.record(event))
            count += 1

    try:
        for t, image in frames(source, fps, reconnect=reconnect, stop=stop, playlists=playlists):
            close(tracker.update(t, recognizer.observe(image, t)))
    except SourceLost:
        close(tracker.flush())  # the people in view when the stream went still get their event
        raise
    close(tracker.flush())
    return count

