"""vislab.tasks.embed.vector_index: FAISS indexes of embeddings (build, search, add, remove, save, load, mmap, checks).

Recall bars: 3000 clustered 32-d vectors (50 Gaussian clusters), 200 queries from the same mixture, default
parameters, seed 0. Measured over data seeds 0-3 (2026-12, faiss 1.15.1): cosine flat 1.000, ivf 0.986-0.994,
ivfpq 0.742-0.766, hnsw 0.999-1.000, lsh 0.396-0.419; euclidean ivf 0.978-0.990, ivfpq 0.769-0.777, hnsw 1.000.
The bars in ``RECALL_BARS`` leave a margin below those.
"""

from __future__ import annotations

import json
import warnings

import faiss
import numpy as np
import pytest

from vislab.core.errors import ConfigError, DataError
from vislab.tasks.embed.vector_index import KINDS, EmbeddingIndex, exact_neighbours, recall_at

N, DIM, K = 3000, 32, 10
RECALL_BARS = {"flat": 1.0, "ivf": 0.95, "ivfpq": 0.65, "hnsw": 0.97, "lsh": 0.33}
REBUILD = "rebuild it with `vislab embed index`"


def clustered(n: int, dim: int = DIM, clusters: int = 50, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    return centres[rng.integers(0, clusters, n)] + rng.standard_normal((n, dim)).astype(np.float32)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, list[dict]]:
    x = clustered(N + 200)
    return x[:N], x[N:], [{"path": f"img{i:04d}.png", "label": int(i % 7)} for i in range(N)]


def small(n: int = 300, seed: int = 1) -> tuple[np.ndarray, list[dict]]:
    x = clustered(n, seed=seed)
    return x, [{"path": f"s{i}.png"} for i in range(n)]


# ------------------------------------------------------------------------------------------ exactness


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_flat_equals_raw_faiss_and_numpy(data, distance):
    base, queries, items = data
    index = EmbeddingIndex.build(base, items, "flat", distance)
    d, ids = index.search(queries, K)
    assert d.dtype == np.float32 and ids.dtype == np.int64 and d.shape == ids.shape == (len(queries), K)

    if distance == "cosine":  # raw FAISS, as its documentation says to do cosine
        b, q = base.copy(), queries.copy()
        faiss.normalize_L2(b)
        faiss.normalize_L2(q)
        raw = faiss.IndexFlatIP(DIM)
        raw.add(b)
        sim, raw_ids = raw.search(q, K)
        raw_d = 1 - sim
    else:
        raw = faiss.IndexFlatL2(DIM)
        raw.add(base)
        sq, raw_ids = raw.search(queries, K)
        raw_d = np.sqrt(sq)
    np.testing.assert_array_equal(ids, raw_ids)
    np.testing.assert_allclose(d, raw_d, atol=1e-6)

    b64, q64 = base.astype(np.float64), queries.astype(np.float64)
    if distance == "cosine":
        b64 /= np.linalg.norm(b64, axis=1, keepdims=True)
        q64 /= np.linalg.norm(q64, axis=1, keepdims=True)
        full = 1 - q64 @ b64.T
    else:
        full = np.sqrt(((q64[:, None, :] - b64[None, :, :]) ** 2).sum(-1))
    np_ids = np.argsort(full, axis=1, kind="stable")[:, :K]
    np.testing.assert_array_equal(ids, np_ids)
    np.testing.assert_allclose(d, np.take_along_axis(full, np_ids, 1), atol=2e-5)

    ex_d, ex_ids = exact_neighbours(base, queries, K, distance)
    np.testing.assert_array_equal(ex_ids, ids)
    np.testing.assert_allclose(ex_d, d, atol=1e-6)
    assert recall_at(ids, np_ids, K) == 1.0
    assert recall_at(np.roll(ids, 1, axis=0), np_ids, K) < 0.2  # other queries' neighbours


# ------------------------------------------------------------------------------------------ every kind


CASES = [(kind, "cosine") for kind in KINDS] + [(kind, "euclidean") for kind in KINDS if kind != "lsh"]


@pytest.mark.parametrize(("kind", "distance"), CASES)
def test_every_kind_builds_saves_loads_and_finds_neighbours(data, tmp_path, kind, distance):
    base, queries, items = data
    _, truth = exact_neighbours(base, queries, K, distance)
    index = EmbeddingIndex.build(base, items, kind, distance, model_id="resnet18-embed")
    assert (len(index), index.dim, index.kind, index.distance, index.model_id) == (N, DIM, kind, distance, "resnet18-embed")
    d, ids = index.search(queries, K)
    recall = recall_at(ids, truth, K)
    assert recall >= RECALL_BARS[kind], f"{kind} {distance}: recall@{K} {recall:.3f} < {RECALL_BARS[kind]}"
    assert (np.diff(d, axis=1) >= -1e-6).all()  # nearest first
    assert (d >= 0).all() and (d <= (2 if distance == "cosine" else np.inf)).all()

    index.save(tmp_path / "idx")
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == ["index.faiss", "items.jsonl", "meta.json"]
    loaded = EmbeddingIndex.load(tmp_path / "idx")
    assert (len(loaded), loaded.dim, loaded.kind, loaded.distance, loaded.model_id) == (N, DIM, kind, distance, "resnet18-embed")
    assert loaded.params == index.params
    d2, ids2 = loaded.search(queries, K)
    np.testing.assert_array_equal(ids2, ids)
    np.testing.assert_allclose(d2, d, atol=1e-6)
    assert loaded.items_of(ids2[:3]) == [[items[i] for i in row] for row in ids[:3]]


def test_search_parameters_defaults_and_overrides(data):
    base, queries, items = data
    _, truth = exact_neighbours(base, queries, K)
    ivf = EmbeddingIndex.build(base, items, "ivf")
    assert ivf.params["nlist"] == 76 and ivf.nprobe == 9  # min(4 sqrt(3000), 3000 // 39); max(8, sqrt(76))
    one = recall_at(ivf.search(queries, K, nprobe=1)[1], truth, K)
    assert one < recall_at(ivf.search(queries, K)[1], truth, K)
    assert recall_at(ivf.search(queries, K, nprobe=76)[1], truth, K) == 1.0  # every list: exact
    ivf.nprobe = 76
    assert ivf.faiss_index.nprobe == 76 and recall_at(ivf.search(queries, K)[1], truth, K) == 1.0
    with pytest.raises(ConfigError, match=r"^nprobe: expected an integer from 1 to 76, got 77$"):
        ivf.nprobe = 77

    hnsw = EmbeddingIndex.build(base, items, "hnsw")
    assert hnsw.ef_search == 64 and hnsw.nprobe is None
    hnsw.ef_search = 200
    assert faiss.downcast_index(hnsw.faiss_index.index).hnsw.efSearch == 200
    with pytest.raises(ConfigError, match=r"^ef_search: expected kind hnsw, got ivf$"):
        ivf.search(queries, K, ef_search=10)
    with pytest.raises(ConfigError, match=r"^nprobe: expected kind ivf or ivfpq, got flat$"):
        EmbeddingIndex.build(base, items, "flat", nprobe=4)


def test_missing_neighbours_are_minus_one_and_inf(data):
    base, queries, items = data
    index = EmbeddingIndex.build(base, items, "ivf", nlist=60)
    d, ids = index.search(queries[:5], 500, nprobe=1)  # one list holds ~50 vectors
    assert (ids == -1).any() and np.isinf(d[ids == -1]).all() and np.isfinite(d[ids >= 0]).all()
    row = int(np.argmax((ids == -1).any(axis=1)))
    found = index.items_of(ids[row])
    assert None in found and all(f is None for f, i in zip(found, ids[row], strict=True) if i == -1)


# ------------------------------------------------------------------------------------------ add / remove


@pytest.mark.parametrize("kind", KINDS)
def test_add_then_search_finds_the_new_items(data, kind):
    base, _, items = data
    index = EmbeddingIndex.build(base, items, kind)
    new = np.random.default_rng(5).standard_normal((8, DIM)).astype(np.float32) * 3
    new_ids = index.add(new, [{"path": f"new{i}.png"} for i in range(8)])
    assert new_ids.tolist() == list(range(N, N + 8)) and len(index) == N + 8
    d, ids = index.search(new, 5)
    if kind == "ivfpq":  # compressed: the new vector is among its nearest, not always first
        assert all(new_ids[i] in ids[i] for i in range(8))
    else:
        np.testing.assert_array_equal(ids[:, 0], new_ids)
        np.testing.assert_allclose(d[:, 0], 0, atol=1e-4)
    assert index.items_of(new_ids[:2]) == [{"path": "new0.png"}, {"path": "new1.png"}]


@pytest.mark.parametrize("kind", ["flat", "ivf", "ivfpq", "lsh"])
def test_remove_makes_items_disappear(data, kind):
    base, _, items = data
    index = EmbeddingIndex.build(base, items, kind)
    gone = [0, 5, 17, 2999]
    assert index.remove(gone) == 4 and len(index) == N - 4
    _, ids = index.search(base[gone], 20)
    assert not np.isin(ids, gone).any()
    _, ids = index.search(base[[1, 2]], 1)
    if kind != "ivfpq":
        assert ids[:, 0].tolist() == [1, 2]  # the others stay
    with pytest.raises(DataError, match=r"^items_of: expected ids held by the index, got 5$"):
        index.items_of([5])
    with pytest.raises(DataError, match=r"^remove: expected ids held by the index, got 1 unknown \(e\.g\. 5\)$"):
        index.remove([5, 6])
    assert len(index) == N - 4  # nothing removed by the refused call
    assert index.add(base[:1], [{"path": "again.png"}]).tolist() == [N]  # ids are not reused


def test_hnsw_remove_is_refused(data):
    base, _, items = data
    index = EmbeddingIndex.build(base[:500], items[:500], "hnsw")
    with pytest.raises(ConfigError) as e:
        index.remove([0])
    assert str(e.value) == "remove: expected an index kind that supports removal (flat, ivf, ivfpq, lsh), got hnsw; rebuild it"
    assert len(index) == 500


# ------------------------------------------------------------------------------------------ save / load


def test_round_trip_keeps_items_ids_and_numbering(tmp_path):
    x, _ = small()
    items = [{"path": f"s{i}.png", "label": np.int64(i % 3), "score": np.float32(0.5), "tags": ["a", "é"]} for i in range(300)]
    index = EmbeddingIndex.build(x, items, "ivf", "euclidean", model_id="m1", nlist=6, nprobe=3)
    index.remove([0, 10, 299])
    added = index.add(x[:2] + 0.01, [{"path": "n0.png"}, {"path": "n1.png"}])
    index.save(tmp_path / "idx")
    meta = json.loads((tmp_path / "idx" / "meta.json").read_text())
    assert {k: meta[k] for k in ("kind", "distance", "dim", "count", "next_id", "model_id")} == {
        "kind": "ivf", "distance": "euclidean", "dim": DIM, "count": 299, "next_id": 302, "model_id": "m1"}
    assert meta["params"]["nlist"] == 6 and meta["params"]["nprobe"] == 3
    assert meta["index_bytes"] == (tmp_path / "idx" / "index.faiss").stat().st_size and len(meta["index_sha256"]) == 64
    lines = (tmp_path / "idx" / "items.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 299 and json.loads(lines[0]) == {"id": 1, "item": {"path": "s1.png", "label": 1, "score": 0.5, "tags": ["a", "é"]}}

    loaded = EmbeddingIndex.load(tmp_path / "idx")
    assert loaded.ids.tolist() == index.ids.tolist() == [i for i in range(300) if i not in (0, 10, 299)] + added.tolist()
    assert loaded.nprobe == 3 and loaded.faiss_index.nprobe == 3 and loaded.model_id == "m1"
    assert loaded.items_of([1, 301]) == [{"path": "s1.png", "label": 1, "score": 0.5, "tags": ["a", "é"]}, {"path": "n1.png"}]
    np.testing.assert_array_equal(loaded.search(x[:20], 5)[1], index.search(x[:20], 5)[1])
    assert loaded.add(x[:1], [{"path": "later.png"}]).tolist() == [302]


def test_save_is_atomic_and_overwrites(tmp_path):
    x, items = small()
    EmbeddingIndex.build(x, items).save(tmp_path / "idx")
    EmbeddingIndex.build(x[:100], items[:100]).save(tmp_path / "idx")  # a second save replaces all three files
    assert len(EmbeddingIndex.load(tmp_path / "idx")) == 100
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == ["index.faiss", "items.jsonl", "meta.json"]  # no temporaries
    index = EmbeddingIndex.build(x[:3], [{"f": object()}, {}, {}])
    with pytest.raises(DataError, match=r"^items: expected JSON values \(str, number, list, dict\), got object in the item of id 0$"):
        index.save(tmp_path / "bad")


@pytest.fixture
def saved(tmp_path):
    x, items = small()
    folder = tmp_path / "idx"
    EmbeddingIndex.build(x, items, "flat").save(folder)
    return folder


def test_truncated_index_is_refused(saved):
    path = saved / "index.faiss"
    meta = json.loads((saved / "meta.json").read_text())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    expected = (f"index {path}: expected {len(data)} bytes (sha256 {meta['index_sha256'][:12]}), got {len(data) // 2} bytes: "
                f"truncated or changed; {REBUILD}")
    for verify in (True, False):  # the size is checked even without hashing
        with pytest.raises(DataError) as e:
            EmbeddingIndex.load(saved, verify=verify)
        assert str(e.value) == expected


def test_changed_bytes_are_refused(saved):
    import hashlib

    path = saved / "index.faiss"
    meta = json.loads((saved / "meta.json").read_text())
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a byte of a stored vector: same size
    path.write_bytes(bytes(data))
    got = hashlib.sha256(bytes(data)).hexdigest()
    with pytest.raises(DataError) as e:
        EmbeddingIndex.load(saved)
    assert str(e.value) == (f"index {path}: expected {len(data)} bytes (sha256 {meta['index_sha256'][:12]}), got {len(data)} bytes "
                            f"(sha256 {got[:12]}): truncated or changed; {REBUILD}")
    assert len(EmbeddingIndex.load(saved, verify=False)) == 300  # not hashed: FAISS reads it (the caller's choice)


@pytest.mark.parametrize("gone", [["meta.json"], ["index.faiss", "items.jsonl"]])
def test_missing_files_are_named(saved, gone):
    for name in gone:
        (saved / name).unlink()
    with pytest.raises(DataError) as e:
        EmbeddingIndex.load(saved)
    assert str(e.value) == (f"index {saved}: expected index.faiss, meta.json and items.jsonl, got no {' and no '.join(gone)}; "
                            f"{REBUILD}")


def test_missing_folder_and_inconsistent_files(saved, tmp_path):
    with pytest.raises(DataError, match=r"^index .*nowhere: expected a folder written by EmbeddingIndex.save, got nothing at that path$"):
        EmbeddingIndex.load(tmp_path / "nowhere")
    lines = (saved / "items.jsonl").read_text().splitlines()
    (saved / "items.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DataError, match=r"items .*items.jsonl: expected 300 items \(meta.json's count\), got 299: truncated or changed"):
        EmbeddingIndex.load(saved)
    (saved / "meta.json").write_text("{not json")
    with pytest.raises(DataError, match=r"meta.json: expected JSON written by EmbeddingIndex.save, got unreadable text"):
        EmbeddingIndex.load(saved)


# ------------------------------------------------------------------------------------------ mmap


def _mapped(path) -> bool:
    with open("/proc/self/maps") as f:
        return any(str(path) in line for line in f)


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_mmap_load_searches_the_same_and_is_read_only(tmp_path, kind):
    x, items = small(1000)
    index = EmbeddingIndex.build(x, items, kind)
    index.save(tmp_path / kind)
    mapped = EmbeddingIndex.load(tmp_path / kind, mmap=True)
    assert mapped.mmapped and not index.mmapped
    try:
        assert _mapped(tmp_path / kind / "index.faiss")
    except FileNotFoundError:  # no /proc here: only the results are checked
        pass
    d, ids = mapped.search(x[:50], K)
    d0, ids0 = index.search(x[:50], K)
    np.testing.assert_array_equal(ids, ids0)
    np.testing.assert_allclose(d, d0, atol=1e-6)
    for call in (lambda: mapped.add(x[:1], [{}]), lambda: mapped.remove([1]), lambda: mapped.save(tmp_path / "copy")):
        with pytest.raises(ConfigError, match=r"expected an index loaded with mmap=False, got a memory-mapped \(read-only\) one"):
            call()
    assert len(mapped) == 1000


def test_mmap_falls_back_with_a_warning(saved, monkeypatch):
    monkeypatch.delattr(faiss, "IO_FLAG_MMAP_IFC")  # a FAISS that cannot map flat codes
    with pytest.warns(UserWarning, match=r"^index .*index.faiss: FAISS .* cannot memory-map kind flat; read it into memory$"):
        index = EmbeddingIndex.load(saved, mmap=True)
    assert not index.mmapped and index.add(np.zeros((1, DIM), np.float32) + 1, [{}]).tolist() == [300]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EmbeddingIndex.load(saved)


# ------------------------------------------------------------------------------------------ refusals


def test_k_larger_than_the_index_is_refused():
    x, items = small()
    index = EmbeddingIndex.build(x, items)
    with pytest.raises(ConfigError) as e:
        index.search(x[:2], 301)
    assert str(e.value) == "-k: expected at most 300 (the index holds 300 items), got 301"
    with pytest.raises(ConfigError, match=r"^-k: expected a positive integer, got 0$"):
        index.search(x[:2], 0)
    assert index.search(x[:2], 300)[1].shape == (2, 300)


def test_queries_of_another_model_or_dimension_are_refused():
    x, items = small()
    index = EmbeddingIndex.build(x, items, model_id="resnet18-embed")
    with pytest.raises(DataError) as e:
        index.search(np.zeros((2, 16), np.float32), 3)
    assert str(e.value) == "query: expected dimension 32 (the index's, model 'resnet18-embed'), got 16"
    with pytest.raises(DataError) as e:
        index.check_query(512, "clip-vit-b32")
    assert str(e.value) == ("query: expected embeddings of model 'resnet18-embed' (dimension 32, the index's), got model "
                            "'clip-vit-b32' (dimension 512); embed the queries with 'resnet18-embed' or rebuild the index")
    with pytest.raises(DataError, match=r"^query: expected embeddings of model 'resnet18-embed'"):
        index.search(x[:2], 3, model_id="other")
    index.check_query(DIM, "resnet18-embed")
    index.check_query(DIM, "")  # an unknown model is not refused
    EmbeddingIndex.build(x, items).check_query(DIM, "anything")  # nor a model the index does not know
    with pytest.raises(DataError, match=r"^queries: expected finite values, got NaN or inf in row 1$"):
        index.search(np.stack([x[0], np.full(DIM, np.nan, np.float32)]), 3)


def test_queries_are_not_changed_and_one_query_is_one_row():
    x, items = small()
    index = EmbeddingIndex.build(x, items)
    q = x[:3].copy()
    _, ids = index.search(q, 2)
    np.testing.assert_array_equal(q, x[:3])  # normalised on a copy
    _, ids1 = index.search(q[0], 2)
    assert ids1.shape == (1, 2) and ids1[0].tolist() == ids[0].tolist()
    np.testing.assert_array_equal(q, x[:3])


def test_too_few_vectors_and_bad_parameters_are_refused():
    x, items = small(100)
    with pytest.raises(ConfigError) as e:
        EmbeddingIndex.build(x, items, "ivf")
    assert str(e.value) == ("ivf: expected at least 156 vectors (39 per inverted list, 4 lists), got 100; use kind flat "
                            "(exact, and fast at this size)")
    with pytest.raises(ConfigError, match=r"^ivf: expected at least nlist=200 vectors to train on, got 100; use a smaller nlist or kind flat$"):
        EmbeddingIndex.build(x, items, "ivf", nlist=200)
    x, items = small(200)
    with pytest.raises(ConfigError, match=r"^ivfpq: expected at least 256 vectors to train 2\^8 codes per sub-vector, got 200; "):
        EmbeddingIndex.build(x, items, "ivfpq")
    with pytest.raises(ConfigError, match=r"^m: expected a divisor of the dimension 32 \(e\.g\. 2, 4, 8, 16, 32\), got 12$"):
        EmbeddingIndex.build(x, items, "ivfpq", m=12, nbits=4)
    with pytest.raises(ConfigError, match=r"^kind: expected one of flat, ivf, ivfpq, hnsw, lsh, got 'ivfqp' \(did you mean 'ivfpq'\?\)$"):
        EmbeddingIndex.build(x, items, "ivfqp")
    with pytest.raises(ConfigError, match=r"^lsh: expected distance 'cosine' \(LSH hashes directions, not lengths\), got 'euclidean'"):
        EmbeddingIndex.build(x, items, "lsh", "euclidean")
    with pytest.raises(DataError, match=r"^items: expected one per vector \(200\), got 199$"):
        EmbeddingIndex.build(x, items[:-1])
    with pytest.raises(DataError, match=r"^vectors: expected a 2-D array \(N, D\), got shape \(32,\)$"):
        EmbeddingIndex.build(x[0], items[:1])
    index = EmbeddingIndex.build(x, items, "ivfpq", m=8, nbits=4)  # 16 codes per sub-vector: 200 vectors suffice
    assert index.params["m"] == 8 and index.params["nbits"] == 4 and len(index) == 200
    with pytest.raises(DataError, match=r"^vectors: expected dimension 32 \(the index's\), got 31$"):
        index.add(x[:2, :31], [{}, {}])


def test_lsh_distances_estimate_the_cosine_distance():
    x, items = small(1000)
    index = EmbeddingIndex.build(x, items, "lsh")
    assert index.params["lsh_bits"] == 2 * DIM
    d, ids = index.search(x[:50], 5)
    assert (ids[:, 0] == np.arange(50)).all() and np.allclose(d[:, 0], 0, atol=1e-6)
    true, _ = exact_neighbours(x, x[:50], 5)
    assert abs(float(d[:, 1:].mean()) - float(true[:, 1:].mean())) < 0.1  # the same scale as the exact distances


def test_search_still_works_after_faiss_torch_utils_patched_faiss():
    """pytorch-metric-learning's inference utils import faiss.contrib.torch_utils, which replaces Index.search with a
    version that takes no search parameters: the index must keep working in the same process."""
    import faiss.contrib.torch_utils  # noqa: F401

    x = np.random.default_rng(0).standard_normal((500, 8)).astype("float32")
    index = EmbeddingIndex.build(x, [{"i": i} for i in range(500)], kind="ivf", nlist=8)
    d, ids = index.search(x[:3], 4, nprobe=8)
    assert ids[:, 0].tolist() == [0, 1, 2] and np.allclose(d[:, 0], 0, atol=1e-5)
