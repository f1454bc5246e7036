"""A GPU faiss cannot use (no memory, broken driver) leaves the gallery answering from the CPU."""

import faiss
import numpy as np

from app.gallery import index as gallery_module
from app.gallery.index import Gallery


def test_gpu_copy_failure_falls_back_to_the_cpu_index(monkeypatch, caplog):
    g = Gallery(8, use_gpu=False)
    g.process_support_set(np.eye(8, dtype=np.float32)[:3], ["a", "b", "c"], {"a": "A", "b": "B", "c": "C"})

    def no_room(*_args):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(faiss, "index_cpu_to_gpu", no_room, raising=False)
    g._gpu = object()  # as if faiss had handed out GPU resources
    g._search_index = None
    (match,) = g.forward(np.eye(8, dtype=np.float32)[2], k=1)[0]
    assert match.person_id == "c" and match.distance < 1e-6
    assert g.device == "cpu" and "searching on the CPU" in caplog.text


def test_gpu_resources_that_fail_to_start_mean_cpu(monkeypatch, caplog):
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1)

    def broken():
        raise RuntimeError("CUDA driver version is insufficient")

    monkeypatch.setattr(faiss, "StandardGpuResources", broken, raising=False)
    assert gallery_module._gpu_resources() is None
    assert Gallery(8).device == "cpu" and "stays on the CPU" in caplog.text
