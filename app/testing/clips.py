"""Video clips made from still photos, for the watch tests and bench: people crossing an empty hall."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def door_clip(scenes: list[tuple[Path, float, float]], path: Path, *, fps: float = 10, length_s: float | None = None,
              size: tuple[int, int] = (640, 480), face_px: int = 300) -> Path:
    """An MJPEG clip: each (photo, from, to) on screen from ``from`` to ``to`` seconds, walking slowly across;
    an empty hall in between."""
    import cv2

    width, height = size
    length_s = length_s if length_s is not None else max(b for _, _, b in scenes) + 0.7
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    hall = np.full((height, width, 3), (96, 90, 84), np.uint8)
    faces = [np.asarray(Image.open(p).convert("RGB").resize((face_px, face_px))) for p, _, _ in scenes]
    top = (height - face_px) // 2
    for i in range(int(round(length_s * fps))):
        t, frame = i / fps, hall.copy()
        for face, (_, a, b) in zip(faces, scenes):
            if a <= t < b:
                x = min(width - face_px, 120 + int((t - a) * 40))
                frame[top:top + face_px, x:x + face_px] = face
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path
