"""A FAISS index of embeddings with its metadata: build, search, add, remove, save and load.

:class:`EmbeddingIndex` keeps a FAISS index of ``(N, D)`` float32 embeddings together with one item dict per vector
(``{"path": ..., "label": ...}``), the model that made the embeddings and the index's parameters. Every vector has a
stable int64 id (0, 1, 2, ... in the order added; ids of removed vectors are not reused), so ``add`` and ``remove``
work without a rebuild where FAISS allows it.

Kinds (:data:`KINDS`):

* ``flat``: exact brute force (``IndexIDMap2(IndexFlat)``);
* ``ivf``: inverted lists of raw vectors (``IndexIVFFlat``; ``nlist`` lists, ``nprobe`` of them scanned per query);
* ``ivfpq``: inverted lists of product-quantised codes (``IndexIVFPQ``; ``m`` sub-vectors of ``nbits`` bits);
* ``hnsw``: a navigable small-world graph (``IndexIDMap2(IndexHNSWFlat)``; ``ef_search`` candidates per query);
  FAISS cannot remove from it;
* ``lsh``: random-hyperplane hashes compared by Hamming distance (``IndexIDMap2(IndexLSH)``; cosine only).

Distances: ``cosine`` L2-normalises the vectors and searches by inner product; :meth:`EmbeddingIndex.search`
returns the cosine distance ``1 - similarity``. ``euclidean`` searches by L2 and returns the Euclidean distance
(the square root of FAISS's squared L2). ``ivfpq`` distances are those of the compressed vectors; ``lsh`` distances
are ``1 - cos(pi * hamming / bits)``, the cosine distance that the Hamming distance estimates.

On disk an index is a folder of three files, each written atomically: ``index.faiss`` (FAISS's own format),
``meta.json`` (kind, distance, dimension, count, model, parameters, versions, size and sha256 of ``index.faiss``)
and ``items.jsonl`` (one ``{"id": ..., "item": {...}}`` per line). :meth:`EmbeddingIndex.load` checks the size and
hash of ``index.faiss`` before FAISS reads it.

Example:
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((100, 8)).astype("float32")
    >>> index = EmbeddingIndex.build(x, [{"path": f"img{i}.png"} for i in range(100)], model_id="demo")
    >>> index
    EmbeddingIndex(kind='flat', distance='cosine', dim=8, items=100, model_id='demo')
    >>> d, ids = index.search(x[:2], k=3)
    >>> ids[:, 0].tolist(), d[:, 0].round(4).tolist()
    ([0, 1], [0.0, 0.0])
    >>> index.items_of(ids[0, :1])
    [{'path': 'img0.png'}]
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from vislab.core.errors import ConfigError, DataError, did_you_mean
from vislab.core.io import atomic_path, atomic_write_text, file_sha256

KINDS = ("flat", "ivf", "ivfpq", "hnsw", "lsh")
DISTANCES = ("cosine", "euclidean")
REMOVABLE = ("flat", "ivf", "ivfpq", "lsh")  # FAISS's HNSW graph cannot drop nodes
INDEX_FILE, META_FILE, ITEMS_FILE = "index.faiss", "meta.json", "items.jsonl"
FORMAT = 1  # of meta.json / items.jsonl
REBUILD = "rebuild it with `vislab embed index`"

MIN_POINTS_PER_LIST = 39  # FAISS's k-means warns below this many training vectors per centroid
MIN_LISTS = 4  # an IVF of fewer lists is a slower flat index
TRAIN_POINTS_PER_LIST = 50  # training sample per IVF list / PQ centroid (FAISS itself stops at 256)
ADD_CHUNK = 1 << 16  # vectors normalised and added at a time (bounds the extra memory of a cosine copy)
HASH_CHUNK = 1 << 24  # bytes read at a time while hashing index.faiss
DEFAULT_EF_SEARCH = 64
DEFAULT_EF_CONSTRUCTION = 40

# The FAISS read flag that memory-maps each kind (IVF: the inverted lists; the others: the flat codes).
MMAP_FLAGS = {"flat": "IO_FLAG_MMAP_IFC", "ivf": "IO_FLAG_MMAP", "ivfpq": "IO_FLAG_MMAP", "hnsw": "IO_FLAG_MMAP_IFC",
              "lsh": "IO_FLAG_MMAP_IFC"}


def default_nlist(n: int) -> int:
    """About ``4 sqrt(N)`` inverted lists, at most one per 39 vectors (what FAISS's k-means needs to train them).

    Example:
        >>> default_nlist(1_000_000), default_nlist(10_000), default_nlist(1_000)
        (4000, 256, 25)
    """
    return max(1, min(round(4 * math.sqrt(n)), n // MIN_POINTS_PER_LIST))


def default_nprobe(nlist: int) -> int:
    """Lists scanned per query: about ``sqrt(nlist)``, at least 8 (never more than there are).

    Example:
        >>> default_nprobe(4000), default_nprobe(256), default_nprobe(4)
        (63, 16, 4)
    """
    return min(nlist, max(8, round(math.sqrt(nlist))))


def default_pq_m(dim: int) -> int:
    """PQ sub-vectors: the largest divisor of ``dim`` up to ``dim / 4`` (sub-vectors of 4 or more values), at most 64.

    Example:
        >>> default_pq_m(128), default_pq_m(512), default_pq_m(100), default_pq_m(7)
        (32, 64, 25, 1)
    """
    top = max(1, min(64, dim // 4))
    return max(m for m in range(1, top + 1) if dim % m == 0)


def _divisors(n: int) -> list[int]:
    return [m for m in range(1, n + 1) if n % m == 0]


def _choice(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ConfigError(f"{name}: expected one of {', '.join(choices)}, got {value!r}{did_you_mean(str(value), choices)}")
    return value


def _positive(name: str, value: Any, low: int = 1, high: int | None = None) -> int:
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= low and (high is None or value <= high)
    if not ok:
        span = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"
        raise ConfigError(f"{name}: expected {span}, got {value!r}")
    return int(value)


def _matrix(x: Any, what: str, dim: int | None = None) -> np.ndarray:
    """``x`` as a 2-D float32 array (a 1-D array is one row); not copied when it already is one."""
    a = np.asarray(x)
    if a.ndim == 1 and what == "queries":
        a = a[None, :]
    if a.ndim != 2:
        raise DataError(f"{what}: expected a 2-D array (N, D), got shape {tuple(a.shape)}")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise DataError(f"{what}: expected real numbers (float32), got dtype {a.dtype}")
    if dim is not None and a.shape[1] != dim:
        raise DataError(f"{what}: expected dimension {dim} (the index's), got {a.shape[1]}")
    return np.ascontiguousarray(a, dtype=np.float32)


def _check_finite(x: np.ndarray, what: str) -> None:
    for i in range(0, len(x), ADD_CHUNK):
        bad = ~np.isfinite(x[i : i + ADD_CHUNK]).all(axis=1)
        if bad.any():
            raise DataError(f"{what}: expected finite values, got NaN or inf in row {i + int(np.argmax(bad))}")


def _check_items(items: Any, n: int) -> list[dict]:
    if not isinstance(items, Sequence) or isinstance(items, str | bytes | dict):
        raise DataError(f"items: expected a list of {n} dicts (one per vector), got {type(items).__name__}")
    if len(items) != n:
        raise DataError(f"items: expected one per vector ({n}), got {len(items)}")
    for i, it in enumerate(items):
        if not isinstance(it, dict):
            raise DataError(f"items: expected a dict per vector, got {type(it).__name__} at position {i}")
    return [dict(it) for it in items]


def _check_k(k: Any, size: int) -> int:
    if not isinstance(k, int | np.integer) or isinstance(k, bool) or k < 1:
        raise ConfigError(f"-k: expected a positive integer, got {k!r}")
    if k > size:
        raise ConfigError(f"-k: expected at most {size} (the index holds {size} items), got {k}")
    return int(k)


def _normalised(x: np.ndarray, distance: str, owned: bool = False) -> np.ndarray:
    """Rows scaled to unit length for cosine (a copy unless ``owned``); ``x`` itself for euclidean."""
    if distance != "cosine":
        return x
    x = x if owned else x.copy()
    faiss.normalize_L2(x)
    return x


def _metric(distance: str) -> int:
    return faiss.METRIC_INNER_PRODUCT if distance == "cosine" else faiss.METRIC_L2


def _to_distances(raw: np.ndarray, ids: np.ndarray, distance: str, lsh_bits: int | None = None) -> np.ndarray:
    """FAISS's scores (in place) as cosine / Euclidean distances; ``inf`` where FAISS found no neighbour (id -1)."""
    if lsh_bits is not None:  # Hamming distance h of random-hyperplane hashes: the angle is about pi * h / bits
        np.multiply(raw, math.pi / lsh_bits, out=raw)
        np.cos(raw, out=raw)
        np.subtract(1.0, raw, out=raw)
    elif distance == "cosine":
        np.subtract(1.0, raw, out=raw)
        np.clip(raw, 0.0, 2.0, out=raw)
    else:
        np.maximum(raw, 0.0, out=raw)
        np.sqrt(raw, out=raw)
    missing = ids < 0
    if missing.any():
        raw[missing] = np.inf
    return raw


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays, and paths, as JSON values (items often carry a numpy label)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(type(value).__name__)


def exact_neighbours(base: np.ndarray, queries: np.ndarray, k: int, distance: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """The exact ``k`` nearest rows of ``base`` for each query (FAISS ``IndexFlatIP`` on normalised vectors for cosine,
    ``IndexFlatL2`` for euclidean): ``(distances (Q, k) float32, row numbers (Q, k) int64)``, distances as
    :meth:`EmbeddingIndex.search` gives them. The ground truth of recall measurements.

    Example:
        >>> base = np.array([[1, 0], [0, 1], [1, 1]], dtype="float32")
        >>> d, i = exact_neighbours(base, np.array([[2, 1]], dtype="float32"), 2, "euclidean")
        >>> i.tolist(), [round(float(v), 3) for v in d[0]]
        ([[2, 0]], [1.0, 1.414])
    """
    _choice("distance", distance, DISTANCES)
    base = _matrix(base, "base")
    queries = _matrix(queries, "queries", base.shape[1])
    k = _check_k(k, len(base))
    flat = faiss.IndexFlat(base.shape[1], _metric(distance))
    for i in range(0, len(base), ADD_CHUNK):
        flat.add(_normalised(base[i : i + ADD_CHUNK], distance))
    raw, ids = flat.search(_normalised(queries, distance), k)
    return _to_distances(raw, ids, distance), ids


def recall_at(found_ids: np.ndarray, true_ids: np.ndarray, k: int = 10) -> float:
    """Recall@k: the share of the true ``k`` nearest neighbours (the first ``k`` columns of ``true_ids``) among the
    first ``k`` found (``-1``, FAISS's "no neighbour", finds nothing).

    Example:
        >>> recall_at(np.array([[1, 2, 3], [4, 5, -1]]), np.array([[3, 2, 9], [4, 7, 8]]), k=3)
        0.5
    """
    found, true = np.asarray(found_ids), np.asarray(true_ids)
    if found.ndim != 2 or true.ndim != 2 or len(found) != len(true) or min(found.shape[1], true.shape[1]) < k:
        raise DataError(f"recall_at: expected two (Q, >= {k}) id arrays of as many queries, got shapes {found.shape} and {true.shape}")
    found, true = found[:, :k], true[:, :k]
    hit = (found[:, :, None] == true[:, None, :]).any(axis=2) & (found >= 0)
    return float(hit.sum() / true.size) if true.size else 1.0


class EmbeddingIndex:
    """A FAISS index of embeddings, one item dict and one stable int64 id per vector. Make one with :meth:`build`
    or :meth:`load` (the constructor takes a FAISS index already filled in the way those two do).

    ``nprobe`` (ivf, ivfpq) and ``ef_search`` (hnsw) are attributes, saved with the index; :meth:`search` takes
    either as a keyword for one call.
    """

    def __init__(self, index: Any, kind: str, distance: str, items: dict[int, dict], *, model_id: str = "",
                 params: dict[str, Any] | None = None, next_id: int | None = None, mmapped: bool = False):
        self._index = index
        self._kind = _choice("kind", kind, KINDS)
        self._distance = _choice("distance", distance, DISTANCES)
        self._items = items
        self._model_id = model_id
        self._params = dict(params or {})
        self._next_id = max(items, default=-1) + 1 if next_id is None else next_id
        self._mmapped = mmapped
        self._ivf = faiss.extract_index_ivf(index) if kind in ("ivf", "ivfpq") else None
        self._inner = faiss.downcast_index(index.index) if kind in ("flat", "hnsw", "lsh") else None
        self._lsh_bits = int(self._inner.nbits) if kind == "lsh" else None

    # ---------------------------------------------------------------- building

    @classmethod
    def build(cls, vectors: np.ndarray, items: Sequence[dict], kind: str = "flat", distance: str = "cosine", *,
              model_id: str = "", nlist: int | None = None, m: int | None = None, nbits: int = 8, hnsw_m: int = 32,
              ef_construction: int = DEFAULT_EF_CONSTRUCTION, lsh_bits: int | None = None, nprobe: int | None = None,
              ef_search: int | None = None, train_size: int | None = None, seed: int = 0) -> EmbeddingIndex:
        """Index ``vectors`` ``(N, D)`` with ``items`` (one dict per vector); the vectors get ids ``0 .. N-1``.

        Defaults scale with N: ``nlist`` ~ 4 sqrt(N) (at most N / 39), ``nprobe`` ~ sqrt(nlist), ``m`` the largest
        divisor of D up to D / 4, ``lsh_bits`` 2 D, ``ef_search`` 64. IVF / PQ train on a sample of
        ``train_size`` vectors (default 50 per list or PQ centroid) drawn with ``seed``, which also seeds k-means.

        Raises:
            ConfigError: an unknown kind or distance, a parameter of another kind, or too few vectors for the kind.
            DataError: vectors that are not a finite 2-D array, or items that are not one dict per vector.
        """
        kind = _choice("kind", kind, KINDS)
        distance = _choice("distance", distance, DISTANCES)
        x = _matrix(vectors, "vectors")
        n, dim = x.shape
        if dim < 1:
            raise DataError("vectors: expected at least one dimension, got shape (N, 0)")
        stored = _check_items(items, n)
        _check_finite(x, "vectors")
        given = {"nlist": nlist, "m": m, "lsh_bits": lsh_bits, "nprobe": nprobe, "ef_search": ef_search, "train_size": train_size}
        owners = {"nlist": ("ivf", "ivfpq"), "nprobe": ("ivf", "ivfpq"), "train_size": ("ivf", "ivfpq"), "m": ("ivfpq",),
                  "ef_search": ("hnsw",), "lsh_bits": ("lsh",)}
        for name, value in given.items():
            if value is not None and kind not in owners[name]:
                raise ConfigError(f"{name}: expected kind {' or '.join(owners[name])}, got {kind}")
        seed = _positive("seed", seed, low=0)
        metric = _metric(distance)
        params: dict[str, Any] = {}

        if kind == "flat":
            index = faiss.IndexIDMap2(faiss.IndexFlat(dim, metric))
        elif kind == "hnsw":
            params = {"hnsw_m": _positive("hnsw_m", hnsw_m, 2), "ef_construction": _positive("ef_construction", ef_construction)}
            inner = faiss.IndexHNSWFlat(dim, params["hnsw_m"], metric)
            inner.hnsw.efConstruction = params["ef_construction"]
            index = faiss.IndexIDMap2(inner)
            params["ef_search"] = _positive("ef_search", DEFAULT_EF_SEARCH if ef_search is None else ef_search)
        elif kind == "lsh":
            if distance != "cosine":
                raise ConfigError("lsh: expected distance 'cosine' (LSH hashes directions, not lengths), got 'euclidean'; "
                                  "use kind flat, ivf, ivfpq or hnsw")
            params = {"lsh_bits": _positive("lsh_bits", 2 * dim if lsh_bits is None else lsh_bits)}
            index = faiss.IndexIDMap2(faiss.IndexLSH(dim, params["lsh_bits"], True, False))  # random rotation, sign bits
        else:
            index, params = cls._trained_ivf(x, kind, distance, n, nlist, m, nbits, train_size, seed)
            params["nprobe"] = _positive("nprobe", default_nprobe(params["nlist"]) if nprobe is None else nprobe, 1, params["nlist"])
        out = cls(index, kind, distance, {}, model_id=model_id, params=params, next_id=0)
        out._apply_search_params()
        out._add_checked(x, stored)
        return out

    @staticmethod
    def _trained_ivf(x: np.ndarray, kind: str, distance: str, n: int, nlist: int | None, m: int | None, nbits: int,
                     train_size: int | None, seed: int) -> tuple[Any, dict[str, Any]]:
        """An IVF (flat or PQ) index trained on a seeded sample of ``x``; refuses too few vectors in one line."""
        dim = x.shape[1]
        if nlist is None:
            nlist = default_nlist(n)
            if nlist < MIN_LISTS:
                raise ConfigError(f"{kind}: expected at least {MIN_LISTS * MIN_POINTS_PER_LIST} vectors "
                                  f"({MIN_POINTS_PER_LIST} per inverted list, {MIN_LISTS} lists), got {n}; use kind flat "
                                  "(exact, and fast at this size)")
        else:
            nlist = _positive("nlist", nlist)
            if n < nlist:
                raise ConfigError(f"{kind}: expected at least nlist={nlist} vectors to train on, got {n}; "
                                  "use a smaller nlist or kind flat")
        params: dict[str, Any] = {"nlist": nlist}
        per_centroid = nlist
        if kind == "ivfpq":
            nbits = _positive("nbits", nbits, 1, 16)
            if m is None:
                m = default_pq_m(dim)
            elif not isinstance(m, int | np.integer) or isinstance(m, bool) or m < 1 or dim % m:
                examples = ", ".join(str(v) for v in _divisors(dim)[-5:])
                raise ConfigError(f"m: expected a divisor of the dimension {dim} (e.g. {examples}), got {m!r}")
            if n < 2**nbits:
                raise ConfigError(f"ivfpq: expected at least {2**nbits} vectors to train 2^{nbits} codes per sub-vector, "
                                  f"got {n}; use a smaller nbits or kind ivf or flat")
            params.update(m=int(m), nbits=nbits)
            per_centroid = max(nlist, 2**nbits)
        size = min(n, TRAIN_POINTS_PER_LIST * per_centroid) if train_size is None else _positive("train_size", train_size, nlist)
        size = min(size, n)
        params.update(train_size=size, seed=seed)

        quantizer = faiss.IndexFlat(dim, _metric(distance))
        if kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, _metric(distance))
        else:
            index = faiss.IndexIVFPQ(quantizer, dim, nlist, params["m"], nbits, _metric(distance))
            index.pq.cp.seed = seed
        index.cp.seed = seed
        rows = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False)) if size < n else slice(None)
        index.train(_normalised(np.ascontiguousarray(x[rows]), distance, owned=size < n))
        return index, params

    # ---------------------------------------------------------------- properties

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return (f"EmbeddingIndex(kind={self._kind!r}, distance={self._distance!r}, dim={self.dim}, items={len(self)}, "
                f"model_id={self._model_id!r})")

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def distance(self) -> str:
        return self._distance

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def params(self) -> dict[str, Any]:
        """The kind's parameters (nlist, nprobe, m, nbits, hnsw_m, ef_construction, ef_search, lsh_bits, ...)."""
        return dict(self._params)

    @property
    def ids(self) -> np.ndarray:
        """The ids held, in the order added."""
        return np.fromiter(self._items, dtype=np.int64, count=len(self._items))

    @property
    def mmapped(self) -> bool:
        """Whether the index was loaded memory-mapped (then it is read-only: no add, remove or save)."""
        return self._mmapped

    @property
    def faiss_index(self) -> Any:
        """The FAISS index itself (queries for it must be normalised by hand for cosine; its scores are raw)."""
        return self._index

    @property
    def nprobe(self) -> int | None:
        """Inverted lists scanned per query (ivf, ivfpq; ``None`` for other kinds)."""
        return self._params.get("nprobe")

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        if self._ivf is None:
            raise ConfigError(f"nprobe: expected kind ivf or ivfpq, got {self._kind}")
        self._params["nprobe"] = _positive("nprobe", value, 1, self._params["nlist"])
        self._apply_search_params()

    @property
    def ef_search(self) -> int | None:
        """Candidates kept per query while walking the graph (hnsw; ``None`` for other kinds); at least ``k``."""
        return self._params.get("ef_search")

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        if self._kind != "hnsw":
            raise ConfigError(f"ef_search: expected kind hnsw, got {self._kind}")
        self._params["ef_search"] = _positive("ef_search", value)
        self._apply_search_params()

    def _apply_search_params(self) -> None:
        if self._ivf is not None:
            self._ivf.nprobe = self._params["nprobe"]
        if self._kind == "hnsw":
            self._inner.hnsw.efSearch = self._params["ef_search"]

    # ---------------------------------------------------------------- searching

    def check_query(self, dim: int, model_id: str = "") -> None:
        """Refuse queries embedded by another model (when both model ids are known) or of another dimension.

        Example:
            >>> index = EmbeddingIndex.build(np.eye(4, dtype="float32"), [{}] * 4, model_id="resnet18")
            >>> index.check_query(4, "resnet18")
            >>> index.check_query(512, "clip-vit-b32")
            Traceback (most recent call last):
            ...
            vislab.core.errors.DataError: query: expected embeddings of model 'resnet18' (dimension 4, the index's), got model 'clip-vit-b32' (dimension 512); embed the queries with 'resnet18' or rebuild the index
        """
        if model_id and self._model_id and model_id != self._model_id:
            raise DataError(f"query: expected embeddings of model {self._model_id!r} (dimension {self.dim}, the index's), "
                            f"got model {model_id!r} (dimension {dim}); embed the queries with {self._model_id!r} or rebuild the index")
        if dim != self.dim:
            of = f", model {self._model_id!r}" if self._model_id else ""
            raise DataError(f"query: expected dimension {self.dim} (the index's{of}), got {dim}")

    def search(self, queries: np.ndarray, k: int = 10, *, nprobe: int | None = None, ef_search: int | None = None,
               model_id: str = "") -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest items of each query ``(Q, D)`` (or one ``(D,)``): ``(distances (Q, k) float32, ids (Q, k)
        int64)``, nearest first. Where an approximate index finds fewer than ``k``, the id is ``-1`` and the distance
        ``inf``. ``nprobe`` / ``ef_search`` override the index's for this call; ``model_id`` (the queries' model) is
        checked against the index's.

        Raises:
            ConfigError: ``k`` larger than the index, or a search parameter of another kind.
            DataError: queries of another model or dimension, or with NaN / inf.
        """
        q = np.asarray(queries)
        self.check_query(int(q.shape[-1]) if q.ndim else 0, model_id)
        q = _matrix(q, "queries", self.dim)
        _check_finite(q, "queries")
        k = _check_k(k, len(self))
        q = _normalised(q, self._distance, owned=not (isinstance(queries, np.ndarray) and np.may_share_memory(q, queries)))
        # faiss.contrib.torch_utils (imported by pytorch-metric-learning's inference utils) replaces ``search`` with a
        # version without ``params`` and keeps FAISS's own as ``search_numpy``: call that one when it is there
        search = getattr(self._index, "search_numpy", None) or self._index.search
        raw, ids = search(q, k, params=self._call_params(nprobe, ef_search))
        return _to_distances(raw, ids, self._distance, self._lsh_bits), ids

    def _call_params(self, nprobe: int | None, ef_search: int | None) -> Any:
        """FAISS search parameters for one call, or ``None`` to use the index's own."""
        if nprobe is not None:
            if self._ivf is None:
                raise ConfigError(f"nprobe: expected kind ivf or ivfpq, got {self._kind}")
            return faiss.SearchParametersIVF(nprobe=_positive("nprobe", nprobe, 1, self._params["nlist"]))
        if ef_search is not None:
            if self._kind != "hnsw":
                raise ConfigError(f"ef_search: expected kind hnsw, got {self._kind}")
            return faiss.SearchParametersHNSW(efSearch=_positive("ef_search", ef_search))
        return None

    def items_of(self, ids: Any) -> Any:
        """The item dicts of ``ids``, in the same nesting (a list per row of a ``(Q, k)`` array); ``None`` for ``-1``.

        Example:
            >>> index = EmbeddingIndex.build(np.eye(3, dtype="float32"), [{"label": c} for c in "abc"])
            >>> index.items_of([[2, -1], [0, 1]])
            [[{'label': 'c'}, None], [{'label': 'a'}, {'label': 'b'}]]
        """
        a = np.asarray(ids)
        if a.ndim == 0:
            return self._item(int(a))
        if a.ndim == 1:
            return [self._item(i) for i in a.tolist()]
        return [self.items_of(row) for row in a]

    def _item(self, i: int) -> dict | None:
        if i == -1:
            return None
        if i not in self._items:
            raise DataError(f"items_of: expected ids held by the index, got {i}")
        return self._items[i]

    # ---------------------------------------------------------------- changing

    def _writable(self, what: str) -> None:
        if self._mmapped:
            raise ConfigError(f"{what}: expected an index loaded with mmap=False, got a memory-mapped (read-only) one; "
                              "load it again with mmap=False to change it")

    def add(self, vectors: np.ndarray, items: Sequence[dict]) -> np.ndarray:
        """Add vectors ``(n, D)`` with their items; returns their new ids (after every id given so far)."""
        self._writable("add")
        x = _matrix(vectors, "vectors", self.dim)
        stored = _check_items(items, len(x))
        _check_finite(x, "vectors")
        return self._add_checked(x, stored)

    def _add_checked(self, x: np.ndarray, items: list[dict]) -> np.ndarray:
        ids = np.arange(self._next_id, self._next_id + len(x), dtype=np.int64)
        for i in range(0, len(x), ADD_CHUNK):
            self._index.add_with_ids(_normalised(x[i : i + ADD_CHUNK], self._distance), ids[i : i + ADD_CHUNK])
        self._items.update(zip(ids.tolist(), items, strict=True))
        self._next_id += len(x)
        return ids

    def remove(self, ids: Iterable[int] | np.ndarray) -> int:
        """Remove the vectors (and items) of ``ids``; returns how many. Not for hnsw (FAISS cannot remove from it)."""
        if self._kind not in REMOVABLE:
            raise ConfigError(f"remove: expected an index kind that supports removal ({', '.join(REMOVABLE)}), "
                              f"got {self._kind}; rebuild it")
        self._writable("remove")
        drop = np.unique(np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64).ravel())
        unknown = [i for i in drop.tolist() if i not in self._items]
        if unknown:
            raise DataError(f"remove: expected ids held by the index, got {len(unknown)} unknown (e.g. {unknown[0]})")
        if len(drop) == 0:
            return 0
        removed = int(self._index.remove_ids(drop))
        if removed != len(drop):
            raise DataError(f"remove: expected FAISS to remove {len(drop)} vectors, got {removed}; {REBUILD}")
        for i in drop.tolist():
            del self._items[i]
        return removed

    # ---------------------------------------------------------------- saving and loading

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``index.faiss``, ``items.jsonl`` and ``meta.json`` (last) into ``folder``, each atomically."""
        import vislab

        self._writable("save")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / INDEX_FILE) as tmp:
            faiss.write_index(self._index, str(tmp))
            size, sha = tmp.stat().st_size, file_sha256(tmp, HASH_CHUNK)
        with atomic_path(folder / ITEMS_FILE) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for i, item in self._items.items():
                try:
                    line = json.dumps({"id": i, "item": item}, ensure_ascii=False, default=_json_default)
                except (TypeError, ValueError) as e:
                    raise DataError(f"items: expected JSON values (str, number, list, dict), got {e} in the item of id {i}") from None
                f.write(line + "\n")
        meta = {"format": FORMAT, "kind": self._kind, "distance": self._distance, "dim": self.dim, "count": len(self),
                "next_id": self._next_id, "model_id": self._model_id, "params": self._params,
                "vislab_version": vislab.__version__, "faiss_version": faiss.__version__,
                "index_bytes": size, "index_sha256": sha}
        atomic_write_text(folder / META_FILE, json.dumps(meta, indent=1) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike, mmap: bool = False, verify: bool = True) -> EmbeddingIndex:
        """Read an index that :meth:`save` wrote. The size of ``index.faiss`` is always checked against ``meta.json``,
        its sha256 too unless ``verify=False`` (hashing a large index takes a while). ``mmap=True`` maps the file
        instead of reading it (read-only: no add, remove or save); a kind this FAISS cannot map is read normally,
        with a warning.

        Raises:
            DataError: a missing folder or file, a truncated or changed ``index.faiss``, or inconsistent files.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise DataError(f"index {folder}: expected a folder written by EmbeddingIndex.save, got nothing at that path")
        missing = [name for name in (INDEX_FILE, META_FILE, ITEMS_FILE) if not (folder / name).is_file()]
        if missing:
            raise DataError(f"index {folder}: expected {INDEX_FILE}, {META_FILE} and {ITEMS_FILE}, got no "
                            f"{' and no '.join(missing)}; {REBUILD}")
        meta = _read_meta(folder / META_FILE)
        path = folder / INDEX_FILE
        size = path.stat().st_size
        expected = f"expected {meta['index_bytes']} bytes (sha256 {meta['index_sha256'][:12]})"
        if size != meta["index_bytes"]:
            raise DataError(f"index {path}: {expected}, got {size} bytes: truncated or changed; {REBUILD}")
        if verify and (sha := file_sha256(path, HASH_CHUNK)) != meta["index_sha256"]:
            raise DataError(f"index {path}: {expected}, got {size} bytes (sha256 {sha[:12]}): truncated or changed; {REBUILD}")
        kind = meta["kind"]
        flags = 0
        if mmap:
            flags = getattr(faiss, MMAP_FLAGS[kind], None)
            if flags is None:
                warnings.warn(f"index {path}: FAISS {faiss.__version__} cannot memory-map kind {kind}; read it into memory", stacklevel=2)
                flags, mmap = 0, False
        try:
            index = faiss.read_index(str(path), flags)
        except RuntimeError as e:
            reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            raise DataError(f"index {path}: expected a FAISS index, got one FAISS cannot read ({reason}); {REBUILD}") from None
        if index.d != meta["dim"] or index.ntotal != meta["count"]:
            raise DataError(f"index {path}: expected {meta['count']} vectors of dimension {meta['dim']} (meta.json), "
                            f"got {index.ntotal} of dimension {index.d}; {REBUILD}")
        items = _read_items(folder / ITEMS_FILE, meta["count"])
        if kind in ("flat", "hnsw", "lsh"):
            held = np.sort(faiss.vector_to_array(index.id_map))
            if not np.array_equal(held, np.sort(np.fromiter(items, dtype=np.int64, count=len(items)))):
                raise DataError(f"items {folder / ITEMS_FILE}: expected the ids of {INDEX_FILE}, got others; {REBUILD}")
        out = cls(index, kind, meta["distance"], items, model_id=meta["model_id"], params=meta["params"],
                  next_id=meta["next_id"], mmapped=mmap)
        out._apply_search_params()
        return out


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"index {path}: expected JSON written by EmbeddingIndex.save, got unreadable text ({e}); {REBUILD}") from None
    if not isinstance(meta, dict):
        raise DataError(f"index {path}: expected a JSON object, got {type(meta).__name__}; {REBUILD}")
    need = ("format", "kind", "distance", "dim", "count", "next_id", "model_id", "params", "index_bytes", "index_sha256")
    lacking = [key for key in need if key not in meta]
    if lacking:
        raise DataError(f"index {path}: expected keys {', '.join(need)}, got none for {', '.join(lacking)}; {REBUILD}")
    if not isinstance(meta["format"], int) or meta["format"] > FORMAT:
        raise DataError(f"index {path}: expected format {FORMAT} or older, got {meta['format']!r} (written by a newer vislab?)")
    if meta["kind"] not in KINDS or meta["distance"] not in DISTANCES:
        raise DataError(f"index {path}: expected a kind of {', '.join(KINDS)} and a distance of {', '.join(DISTANCES)}, "
                        f"got {meta['kind']!r} and {meta['distance']!r}; {REBUILD}")
    return meta


def _read_items(path: Path, count: int) -> dict[int, dict]:
    items: dict[int, dict] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            try:
                row = json.loads(line)
                i, item = int(row["id"]), row["item"]
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                raise DataError(f"items {path}: expected a JSON object with 'id' and 'item' on line {number}, "
                                f"got {line.strip()[:60]!r}; {REBUILD}") from None
            if i in items:
                raise DataError(f"items {path}: expected each id once, got id {i} again on line {number}; {REBUILD}")
            items[i] = item
    if len(items) != count:
        raise DataError(f"items {path}: expected {count} items (meta.json's count), got {len(items)}: truncated or changed; {REBUILD}")
    return items
