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

From ``fast_from`` people (200,000) that pass is itself too slow (27 ms at 10^6 on one core,
compute-bound for every scalar quantizer), so 4-bit PQ fast-scan codes (16 bytes a person for
128-d) name ``k + FAST_EXTRA`` candidates in ~1 ms, re-ranked exactly together with every row
written since the codes were made. The codes are made in a background thread after a build
(~2 s at 10^6) and remade when many rows have gone stale; until then the fp16 pass answers.
A candidate the codes miss can only be replaced by a farther person: a stranger may then be
rejected, never named (``bench/gallery_scale.py`` checks that genuine queries find their person).
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass

import faiss
import numpy as np

from models.calibration import SHOT_CLASSES, capture_class, shot_class
from models.prototypes import normalise, prototype, prototypes_by_label

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Entry:
    person_id: str
    name: str
    n_support: int
    capture: str | None = None  # capture class (models.calibration.CAPTURE_CLASSES): the face(s) a camera captured


@dataclass
class Match:
    person_id: str
    name: str
    n_support: int
    distance: float
    capture: str | None = None  # the threshold is the capture class's (OperatingPoint.threshold_for)

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
    """Prototypes of every enrolled person, kept in step with the database by the service.

    A person's prototype lives in one *row* of a flat float32 index and of its fp16 copy. An upsert
    writes that row in place (through faiss's own buffers), a removal zeroes it and frees it for the
    next person, so neither costs O(gallery): faiss's ``remove_ids`` compacts the whole index, 134 ms
    at 10^6 people. Freed rows are never answered (a zero row is similarity 0, and is filtered out);
    when more than ``MAX_FREE`` (or 1 %) are free the index is compacted once.
    """

    RERANK_EXTRA = 16
    MAX_FREE = 64
    FAST_EXTRA = 64  # fast-scan candidates beyond k that are re-ranked exactly
    FAST_TRAIN = 65_536  # rows the codebooks are trained on
    FAST_CHUNK = 16_384  # rows encoded per hold of the lock (a write waits at most ~10 ms at 10^6)

    def __init__(self, dim: int, *, use_gpu: bool = True, coarse_from: int = 20_000, fast_from: int = 200_000):
        self.dim = dim
        self.coarse_from = coarse_from
        self.fast_from = fast_from
        self._lock = threading.RLock()
        self._gpu = _gpu_resources() if use_gpu else None
        # per row: the person, their name and support count (None for a freed row); columns, not objects, so a
        # gallery of 10^6 is built without 10^6 allocations
        self._ids: list[str | None] = []
        self._names: list[str | None] = []
        self._counts: list[int] = []
        self._row_of: dict[str, int] = {}
        self._free: list[int] = []
        self._by_class: collections.Counter[int] = collections.Counter()  # people per shot class (1, 2, 3+)
        self._capture_of: dict[str, str] = {}  # person -> capture class, for the few whose faces hold a capture
        self._exact = faiss.IndexFlatIP(dim)
        self._coarse = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
        self._null_code = self._coarse.sa_encode(np.zeros((1, dim), np.float32))[0]
        self._search_index = None  # GPU copy, rebuilt lazily after writes
        # From ``fast_from`` people on a CPU: 4-bit PQ fast-scan codes (16 bytes a person) name candidates, which
        # are re-ranked exactly with the rows written since the codes were made (see _fast_candidates).
        self._fast = None
        self._fast_rows = 0  # rows [0, _fast_rows) have codes in _fast
        self._stale: set[int] = set()  # rows written since their code was made
        self._encoding_writes: set[int] | None = None  # rows written while new codes are being made
        self._fast_generation = 0
        self.fast_ready = threading.Event()  # set once searches use the fast-scan codes (or never will)
        self.fast_ready.set()
        if self._gpu is not None:
            log.info("gallery index on the GPU (faiss sees %d)", faiss.get_num_gpus())

    @property
    def device(self) -> str:
        return "cuda" if self._gpu is not None else "cpu"

    def __len__(self) -> int:
        return len(self._row_of)

    # rows -------------------------------------------------------------------------------
    def _vectors(self) -> np.ndarray:
        """A writable (rows, dim) view of the float32 index's storage (valid until the next add)."""
        n = self._exact.ntotal
        return faiss.rev_swig_ptr(self._exact.get_xb(), n * self.dim).reshape(n, self.dim) if n else \
            np.zeros((0, self.dim), np.float32)

    def _codes(self) -> np.ndarray:
        n, size = self._coarse.ntotal, self._coarse.code_size
        return faiss.rev_swig_ptr(self._coarse.codes.data(), n * size).reshape(n, size)

    def _put(self, proto: np.ndarray) -> int:
        if self._free:
            row = self._free.pop()
            self._written(row)
            self._vectors()[row] = proto
            self._codes()[row] = self._coarse.sa_encode(proto[None])[0]
        else:
            row = self._exact.ntotal
            self._exact.add(proto[None])
            self._coarse.add(proto[None])
            self._ids.append(None)
            self._names.append(None)
            self._counts.append(0)
        return row

    def _written(self, row: int) -> None:
        """A row's values changed: its fast-scan code (if any) no longer stands for it."""
        if self._fast is not None:
            self._stale.add(row)
            if len(self._stale) > max(4096, self._exact.ntotal // 100) and self._encoding_writes is None:
                self._start_encoding()
        if self._encoding_writes is not None:
            self._encoding_writes.add(row)

    def _release(self, row: int) -> None:
        self._written(row)
        self._vectors()[row] = 0.0
        self._codes()[row] = self._null_code
        self._ids[row] = self._names[row] = None
        self._free.append(row)
        if len(self._free) > max(self.MAX_FREE, len(self._row_of) // 100):
            self._compact()

    def _fill(self, protos: np.ndarray, ids: list[str], names: list[str], counts: list[int]) -> None:
        """Empty the index, then rows 0..P-1 := ``protos`` of these people."""
        self._exact.reset()
        self._coarse.reset()
        self._free.clear()
        for index in (self._exact, self._coarse):  # room to grow: the next inserts append without a copy of all
            room = (len(protos) + max(1024, len(protos) // 8)) * index.code_size
            index.codes.resize(room)
            index.codes.resize(0)
        if len(protos):
            self._exact.add(protos)
            self._coarse.add(protos)
        self._ids, self._names, self._counts = list(ids), list(names), list(counts)
        self._row_of = dict(zip(self._ids, range(len(self._ids))))
        self._fast, self._fast_rows, self._stale, self._encoding_writes = None, 0, set(), None  # rows renumbered
        self._fast_generation += 1
        self.fast_ready.set()
        if self._gpu is None and len(protos) >= self.fast_from and self.dim % 4 == 0:
            self._start_encoding()

    # fast-scan codes --------------------------------------------------------------------
    def _start_encoding(self) -> None:
        """Make fast-scan codes of every row in the background (~2 s at 10^6): searches meanwhile use the index
        they had (the exact fp16 pass, or the previous codes plus their stale rows)."""
        self._fast_generation += 1
        self._encoding_writes = set()
        if self._fast is None:
            self.fast_ready.clear()
        threading.Thread(target=self._encode, args=(self._fast_generation,), name="gallery-fast-scan",
                         daemon=True).start()

    def _encode(self, generation: int) -> None:
        try:
            with self._lock:
                if generation != self._fast_generation:
                    return
                n = self._exact.ntotal
                training = self._vectors()[:: max(1, n // self.FAST_TRAIN)].copy()  # evenly spread, cheap to take
            index = faiss.IndexPQFastScan(self.dim, self.dim // 4, 4, faiss.METRIC_INNER_PRODUCT)
            index.train(training)  # outside the lock: searches and writes go on
            for start in range(0, n, self.FAST_CHUNK):
                with self._lock:
                    if generation != self._fast_generation:
                        return
                    chunk = self._vectors()[start : min(n, start + self.FAST_CHUNK)].copy()
                index.add(chunk)
            with self._lock:
                if generation != self._fast_generation:
                    return
                # every row written since encoding began is stale, whichever chunk it was in
                self._fast, self._fast_rows, self._stale = index, n, self._encoding_writes
                self._encoding_writes = None
                self.fast_ready.set()
        except Exception:  # the exact pass keeps answering; a failed encode only costs speed
            log.exception("making the gallery's fast-scan codes failed; searches stay exact and slower")
            with self._lock:
                if generation == self._fast_generation:
                    self._encoding_writes = None
                    self.fast_ready.set()

    def _fast_candidates(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The codes' best ``k + FAST_EXTRA``, plus every row written or added since they were made, re-ranked by
        their exact float32 similarities. A person the codes miss is only ever replaced by a farther one, so a
        miss can make a stranger rejected, never a stranger named."""
        wide = min(self._fast.ntotal, k + self.FAST_EXTRA)
        _, candidates = _search(self._fast, queries, wide)
        extra = np.concatenate([np.fromiter(self._stale, np.int64, len(self._stale)),
                                np.arange(self._fast_rows, self._exact.ntotal, dtype=np.int64)])
        return self._rerank(queries, [np.unique(np.concatenate([found[found >= 0], extra])) for found in candidates],
                            k)

    def _rerank(self, queries: np.ndarray, candidates, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Each query's candidate rows ranked by their exact float32 similarities: the best ``k`` (similarities, rows;
        -inf / -1 where fewer)."""
        vectors = self._vectors()
        sims = np.full((len(queries), k), -np.inf, dtype=np.float32)
        rows = np.full((len(queries), k), -1, dtype=np.int64)
        for i, (query, found) in enumerate(zip(queries, candidates)):
            exact = vectors[found] @ query
            best = np.argsort(-exact, kind="stable")[:k]
            sims[i, : len(best)], rows[i, : len(best)] = exact[best], found[best]
        return sims, rows

    def _compact(self) -> None:
        rows = sorted(self._row_of.values())
        self._fill(self._vectors()[rows].copy(), [self._ids[r] for r in rows], [self._names[r] for r in rows],
                   [self._counts[r] for r in rows])

    # support set ------------------------------------------------------------------------
    def process_support_set(self, embeddings: np.ndarray, labels: list[str], names: dict[str, str],
                            captures: dict[str, int] | None = None) -> None:
        """Replace the whole gallery: one prototype per label (vectorised: 10^6 people in seconds). ``captures``:
        per person, how many of their faces a camera captured (their capture class: its own threshold)."""
        with self._lock:
            people, protos, counts = prototypes_by_label(np.asarray(embeddings, np.float32).reshape(-1, self.dim),
                                                         labels)
            people, counts = people.tolist(), counts.tolist()
            self._capture_of = {}
            for person, count in zip(people, counts) if captures else ():
                kind = capture_class(count, captures.get(person, 0))
                if kind is not None:
                    self._capture_of[person] = kind
            self._fill(protos, people, [names[p] for p in people], counts)
            classes, n = np.unique(np.clip(np.asarray(counts, np.int64), 1, SHOT_CLASSES[-1]), return_counts=True)
            self._by_class = collections.Counter(dict(zip(classes.tolist(), n.tolist())))
            self._search_index = None

    def upsert(self, person_id: str, name: str, embeddings: np.ndarray, captures: int = 0) -> None:
        """Set one person's prototype from all their support embeddings (none: remove them), ``captures`` of them
        captured by a camera (their capture class: its own threshold)."""
        with self._lock:
            if len(embeddings) == 0:
                self.remove(person_id)
                return
            proto = prototype(embeddings)
            row = self._row_of.get(person_id)
            if row is None:
                row = self._put(proto)
                self._row_of[person_id] = row
            else:  # in place: the same row, new values
                self._by_class[shot_class(self._counts[row])] -= 1
                self._written(row)
                self._vectors()[row] = proto
                self._codes()[row] = self._coarse.sa_encode(proto[None])[0]
            self._ids[row], self._names[row], self._counts[row] = person_id, name, len(embeddings)
            self._by_class[shot_class(len(embeddings))] += 1
            kind = capture_class(len(embeddings), captures)
            if kind is None:
                self._capture_of.pop(person_id, None)
            else:
                self._capture_of[person_id] = kind
            self._search_index = None

    def remove(self, person_id: str) -> None:
        with self._lock:
            row = self._row_of.pop(person_id, None)
            if row is None:
                return
            self._by_class[shot_class(self._counts[row])] -= 1
            self._capture_of.pop(person_id, None)
            self._release(row)
            self._search_index = None

    def rename(self, person_id: str, name: str) -> None:
        with self._lock:
            row = self._row_of.get(person_id)
            if row is not None:
                self._names[row] = name

    def snapshot(self) -> dict[str, tuple[str, int, np.ndarray]]:
        """Each person's name, support count and prototype as the index holds them (to compare galleries)."""
        with self._lock:
            vectors = self._vectors()
            return {p: (self._names[row], self._counts[row], vectors[row].copy()) for p, row in self._row_of.items()}

    def composition(self) -> dict[int, int]:
        """How many people are enrolled with 1, 2, and 3 or more photos: what the operating point depends on."""
        with self._lock:
            return {s: self._by_class[s] for s in SHOT_CLASSES}

    def captured(self) -> int:
        """How many people's prototypes hold a face a camera captured."""
        return len(self._capture_of)

    def entry(self, person_id: str) -> Entry | None:
        row = self._row_of.get(person_id)
        return (Entry(person_id, self._names[row], self._counts[row], self._capture_of.get(person_id))
                if row is not None else None)

    # queries ----------------------------------------------------------------------------
    def _index(self):
        if self._gpu is None:
            return self._exact
        if self._search_index is None:
            try:
                self._search_index = faiss.index_cpu_to_gpu(self._gpu, 0, self._exact)
            except Exception as exc:  # e.g. out of GPU memory: keep serving from the CPU copy
                log.warning("copying the gallery index to the GPU failed (%s); searching on the CPU", exc)
                self._gpu = None
                return self._exact
        return self._search_index

    def _coarse_then_exact(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Candidates from the fp16 codes, ranked by their exact float32 similarities."""
        wide = min(self._coarse.ntotal, k + self.RERANK_EXTRA)
        _, candidates = _search(self._coarse, queries, wide)
        return self._rerank(queries, [found[found >= 0] for found in candidates], k)

    def forward(self, queries: np.ndarray, k: int = 5) -> list[list[Match]]:
        """For each query embedding, up to ``k`` nearest people, nearest first."""
        queries = normalise(np.atleast_2d(queries))
        with self._lock:
            if not self._row_of or len(queries) == 0:
                return [[] for _ in range(len(queries))]
            wanted = max(1, min(k, len(self._row_of)))
            out = self._matches(queries, wanted, wanted)
            short = [i for i, m in enumerate(out) if len(m) < wanted]
            if short and self._free:  # a freed row (similarity 0) ranked: only when few live rows beat 0
                wider = self._matches(queries[short], wanted, min(self._exact.ntotal, wanted + len(self._free)))
                for i, matches in zip(short, wider):
                    out[i] = matches
            return out

    def _matches(self, queries: np.ndarray, wanted: int, k: int) -> list[list[Match]]:
        if self._gpu is None and self._fast is not None:
            sims, rows = self._fast_candidates(queries, k)
        elif self._gpu is None and len(self._row_of) >= self.coarse_from:
            sims, rows = self._coarse_then_exact(queries, k)
        else:
            sims, rows = _search(self._index(), queries, k)
        out = []
        for sim_row, id_row in zip(sims, rows):
            matches = []
            for s, r in zip(sim_row, id_row):
                person = self._ids[r] if r >= 0 else None
                if person is None:  # nothing found, or a freed row
                    continue
                d = float(np.sqrt(max(0.0, 2.0 - 2.0 * float(s))))
                matches.append(Match(person, self._names[r], self._counts[r], d, self._capture_of.get(person)))
            out.append(matches[:wanted])
        return out


class Galleries:
    """One :class:`Gallery` per collection, and the one database gallery version they reflect together.

    A person is in exactly one collection's index; a move is a removal from one and an upsert into
    the other. Collections are created empty on first use, so a collection made by another worker
    is searchable here as soon as its people arrive with a sync.
    """

    def __init__(self, dim: int, make=None):
        self.dim = dim
        self._make = make or (lambda: Gallery(dim))
        self._by_name: dict[str, Gallery] = {}
        self._where: dict[str, str] = {}  # person -> collection
        self._lock = threading.Lock()
        self.version = -1  # the database gallery version these indexes reflect

    def get(self, collection: str) -> Gallery:
        with self._lock:
            gallery = self._by_name.get(collection)
            if gallery is None:
                gallery = self._by_name[collection] = self._make()
            return gallery

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def __len__(self) -> int:
        return sum(len(g) for g in list(self._by_name.values()))

    def load(self, embeddings: np.ndarray, labels: list[str], names: dict[str, str], collection_of: dict[str, str],
             captures: dict[str, int] | None = None):
        """Every collection's index from scratch (rows grouped by their person's collection)."""
        groups: dict[str, list[int]] = {}
        for i, person in enumerate(labels):
            groups.setdefault(collection_of[person], []).append(i)
        with self._lock:
            fresh = {name: self._make() for name in set(groups) | set(self._by_name)}
        for name, gallery in fresh.items():
            rows = groups.get(name, [])
            gallery.process_support_set(embeddings[rows] if rows else np.zeros((0, self.dim), np.float32),
                                        [labels[i] for i in rows], {labels[i]: names[labels[i]] for i in rows},
                                        captures)
        with self._lock:
            self._by_name, self._where = fresh, dict(collection_of)

    def upsert(self, person_id: str, collection: str, name: str, embeddings: np.ndarray, captures: int = 0) -> None:
        before = self._where.get(person_id)
        if before is not None and before != collection:
            self.get(before).remove(person_id)
        self.get(collection).upsert(person_id, name, embeddings, captures)
        self._where[person_id] = collection

    def remove(self, person_id: str) -> None:
        before = self._where.pop(person_id, None)
        if before is not None:
            self.get(before).remove(person_id)

    def drop(self, collection: str) -> None:
        with self._lock:
            self._by_name.pop(collection, None)
            self._where = {p: c for p, c in self._where.items() if c != collection}
