"""The few-shot head the service runs: one prototype per enrolled person, searched with FAISS.

Enrollment *is* processing a support set: :meth:`Gallery.process_support_set`
turns support embeddings and their person labels into prototypes (the
normalised mean of each person's embeddings); :meth:`Gallery.forward` returns,
for each query embedding, the nearest people and their distances. Prototypes
are unit vectors, so an exact inner-product index (``IndexFlatIP``) gives the
cosine similarity s and the Euclidean distance sqrt(2 - 2s). The index lives on
the GPU when faiss sees one and falls back to the CPU otherwise.

On the CPU, one exact query over a large gallery is memory-bound (100,000
prototypes are 51 MB read per query, ~3-5 ms on a 2-core host). From
``coarse_from`` people on, a second index holding the prototypes as fp16 codes
(half the bytes; similarity error <= 1e-4) picks a few more candidates than
asked for, and those are re-ranked with the exact float32 prototypes, so the
answer is the exact one unless more than ``RERANK_EXTRA`` people tie within
~1e-4 of the k-th (``bench/faiss_index_choice.py`` measures the codes).
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass

import faiss
import numpy as np

from models.calibration import SHOT_CLASSES, shot_class
from models.prototypes import normalise, prototype, prototypes

log = logging.getLogger(__name__)


@dataclass
class Entry:
    person_id: str
    name: str
    n_support: int


@dataclass
class Match:
    person_id: str
    name: str
    n_support: int
    distance: float

    @property
    def similarity(self) -> float:
        return 1.0 - self.distance**2 / 2.0


def _gpu_resources():
    try:
        if faiss.get_num_gpus() > 0:
            return faiss.StandardGpuResources()
    except AttributeError:  # faiss-cpu has no GPU symbols
        pass
    except Exception as exc:  # a GPU faiss cannot use (driver, memory): the CPU index answers the same
        log.warning("faiss sees a GPU but cannot use it (%s); the gallery index stays on the CPU", exc)
    return None


def _search(index, queries: np.ndarray, k: int):
    """``index.search`` with one OpenMP thread for the few queries of one photo.

    faiss parallelises a single query over its OpenMP team; on a small CPU
    shared with torch that team mostly waits for cores: measured on 2 cores at
    100,000 prototypes, ~30 ms a query with the default 2 threads, ~3 ms with 1.
    The setting is per calling thread, so it is restored for torch afterwards.
    """
    if len(queries) >= 20:  # faiss's BLAS path for batches, where the team pays off
        return index.search(queries, k)
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return index.search(queries, k)
    finally:
        faiss.omp_set_num_threads(previous)


class Gallery:
    """Prototypes of every enrolled person, kept in step with the database by the service."""

    RERANK_EXTRA = 16

    def __init__(self, dim: int, *, use_gpu: bool = True, coarse_from: int = 20_000):
        self.dim = dim
        self.coarse_from = coarse_from
        self.version = -1  # the database gallery version this copy reflects
        self._lock = threading.RLock()
        self._gpu = _gpu_resources() if use_gpu else None
        self._entries: dict[int, Entry] = {}
        self._row_of: dict[str, int] = {}
        self._by_class: collections.Counter[int] = collections.Counter()  # people per shot class (1, 2, 3+)
        self._next_row = 0
        self._cpu_index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._coarse_index = faiss.IndexIDMap2(
            faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
        )
        self._search_index = None  # GPU copy, rebuilt lazily after writes
        if self._gpu is not None:
            log.info("gallery index on the GPU (faiss sees %d)", faiss.get_num_gpus())

    @property
    def device(self) -> str:
        return "cuda" if self._gpu is not None else "cpu"

    def __len__(self) -> int:
        return len(self._entries)

    # support set ------------------------------------------------------------------------
    def process_support_set(self, embeddings: np.ndarray, labels: list[str], names: dict[str, str]) -> None:
        """Replace the whole gallery: one prototype per label."""
        with self._lock:
            self._entries.clear()
            self._by_class.clear()
            self._row_of.clear()
            self._cpu_index.reset()
            self._coarse_index.reset()
            by_label: dict[str, list[int]] = {}
            for i, label in enumerate(labels):
                by_label.setdefault(label, []).append(i)
            if by_label:
                people = list(by_label)
                protos = prototypes(embeddings, [by_label[p] for p in people])
                rows = np.arange(self._next_row, self._next_row + len(people), dtype=np.int64)
                self._next_row += len(people)
                self._cpu_index.add_with_ids(protos, rows)
                self._coarse_index.add_with_ids(protos, rows)
                for p, row in zip(people, rows):
                    self._entries[int(row)] = Entry(p, names[p], len(by_label[p]))
                    self._by_class[shot_class(len(by_label[p]))] += 1
                    self._row_of[p] = int(row)
            self._search_index = None

    def upsert(self, person_id: str, name: str, embeddings: np.ndarray) -> None:
        """Set one person's prototype from all their support embeddings (none: remove them)."""
        with self._lock:
            self.remove(person_id)
            if len(embeddings) == 0:
                return
            row = self._next_row
            self._next_row += 1
            proto, ids = prototype(embeddings)[None, :], np.array([row], dtype=np.int64)
            self._cpu_index.add_with_ids(proto, ids)
            self._coarse_index.add_with_ids(proto, ids)
            self._entries[row] = Entry(person_id, name, len(embeddings))
            self._by_class[shot_class(len(embeddings))] += 1
            self._row_of[person_id] = row
            self._search_index = None

    def remove(self, person_id: str) -> None:
        with self._lock:
            row = self._row_of.pop(person_id, None)
            if row is None:
                return
            ids = np.array([row], dtype=np.int64)
            self._cpu_index.remove_ids(ids)
            self._coarse_index.remove_ids(ids)
            self._by_class[shot_class(self._entries.pop(row).n_support)] -= 1
            self._search_index = None

    def rename(self, person_id: str, name: str) -> None:
        with self._lock:
            row = self._row_of.get(person_id)
            if row is not None:
                self._entries[row].name = name

    def snapshot(self) -> dict[str, tuple[str, int, np.ndarray]]:
        """Each person's name, support count and prototype as the index holds them (to compare galleries)."""
        with self._lock:
            return {e.person_id: (e.name, e.n_support, self._cpu_index.reconstruct(row))
                    for row, e in self._entries.items()}

    def composition(self) -> dict[int, int]:
        """How many people are enrolled with 1, 2, and 3 or more photos: what the operating point depends on."""
        with self._lock:
            return {s: self._by_class[s] for s in SHOT_CLASSES}

    def entry(self, person_id: str) -> Entry | None:
        row = self._row_of.get(person_id)
        return self._entries.get(row) if row is not None else None

    # queries ----------------------------------------------------------------------------
    def _index(self):
        if self._gpu is None:
            return self._cpu_index
        if self._search_index is None:
            try:
                self._search_index = faiss.index_cpu_to_gpu(self._gpu, 0, self._cpu_index)
            except Exception as exc:  # e.g. out of GPU memory: keep serving from the CPU copy
                log.warning("copying the gallery index to the GPU failed (%s); searching on the CPU", exc)
                self._gpu = None
                return self._cpu_index
        return self._search_index

    def _coarse_then_exact(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Candidates from the fp16 codes, ranked by their exact float32 similarities."""
        wide = min(len(self._entries), k + self.RERANK_EXTRA)
        _, candidates = _search(self._coarse_index, queries, wide)
        sims = np.full((len(queries), k), -np.inf, dtype=np.float32)
        rows = np.full((len(queries), k), -1, dtype=np.int64)
        for i, (query, found) in enumerate(zip(queries, candidates)):
            found = found[found >= 0]
            exact = np.stack([self._cpu_index.reconstruct(int(r)) for r in found]) @ query
            best = np.argsort(-exact, kind="stable")[:k]
            sims[i, : len(best)], rows[i, : len(best)] = exact[best], found[best]
        return sims, rows

    def forward(self, queries: np.ndarray, k: int = 5) -> list[list[Match]]:
        """For each query embedding, up to ``k`` nearest people, nearest first."""
        queries = normalise(np.atleast_2d(queries))
        with self._lock:
            if not self._entries or len(queries) == 0:
                return [[] for _ in range(len(queries))]
            k = max(1, min(k, len(self._entries)))
            if self._gpu is None and len(self._entries) >= self.coarse_from:
                sims, rows = self._coarse_then_exact(queries, k)
            else:
                sims, rows = _search(self._index(), queries, k)
            out = []
            for sim_row, id_row in zip(sims, rows):
                matches = []
                for s, r in zip(sim_row, id_row):
                    if r < 0:
                        continue
                    e = self._entries[int(r)]
                    d = float(np.sqrt(max(0.0, 2.0 - 2.0 * float(s))))
                    matches.append(Match(e.person_id, e.name, e.n_support, d))
                out.append(matches)
            return out
