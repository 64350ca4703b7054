"""Metric learning's commands: ``eval`` (retrieval + verification numbers), ``embed`` (vectors of images), ``index``
and ``search`` (FAISS), ``verify`` (one pair), ``cluster``, ``fewshot`` (prototypes of new classes) and
``explain`` (similarity maps).

Every command loads the checkpoint with :func:`load_embedder`, which also gives the *model identity*
(``<run>:<sha256 of the checkpoint file>``): an index remembers the identity of the model that embedded its
items and refuses queries embedded by another one.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vislab.core import config as C
from vislab.core.errors import CheckpointError, ConfigError, DataError
from vislab.core.io import atomic_write_text, csv_cell, file_sha256, read_image
from vislab.core.progress import Tracker
from vislab.data.embed import EmbedDataConfig, EmbedStream, load_embed_data, read_pairs
from vislab.engine.evaluate import run_eval
from vislab.tasks.embed.config import (
    EmbedClusterConfig,
    EmbedEmbedConfig,
    EmbedEvalConfig,
    EmbedExplainConfig,
    EmbedFewshotConfig,
    EmbedIndexConfig,
    EmbedSearchConfig,
    EmbedVerifyConfig,
)
from vislab.tasks.embed.task import TASK, EmbedTask
from vislab.tasks.shared.inputs import expand_inputs, preprocess
from vislab.tasks.shared.model import load_for_inference


# --------------------------------------------------------------------------------------------
# Loading and embedding
# --------------------------------------------------------------------------------------------
def load_embedder(checkpoint: str, device: str = "auto", weights: str = "") -> tuple[torch.nn.Module, dict[str, Any], torch.device, str]:
    """``(model, state, device, model_id)`` of an embed checkpoint (fp32, eval mode), or of ``clip:ARCH`` with its
    local ``weights`` (:mod:`vislab.tasks.embed.clip`)."""
    from vislab.tasks.embed.clip import load_clip, parse_clip

    arch = parse_clip(checkpoint)
    if arch is not None:
        from vislab.core.device import resolve_device

        dev = resolve_device(device)
        model, state, model_id = load_clip(arch, weights, dev)
        return model, state, dev, model_id
    model, state, dev, _ = load_for_inference(checkpoint, TASK, device, "fp32")
    run = Path(state["path"]).parent.parent.name
    return model.float(), state, dev, f"{run}:{file_sha256(state['path'])[:16]}"


def run_dir_of(state: dict[str, Any]) -> Path:
    """The run folder of a checkpoint (``runs/embed/clip-ARCH`` for a CLIP model: it has no run)."""
    if str(state.get("model", "")).startswith("clip:"):
        return Path("runs") / "embed" / state["model"].replace(":", "-").replace("/", "-")
    return Path(state["path"]).parent.parent


def run_threshold(state: dict[str, Any]) -> float | None:
    """The verification threshold ``train`` chose on the validation identities (``run.json``), if any."""
    run_json = run_dir_of(state) / "run.json"
    return json.loads(run_json.read_text()).get("summary", {}).get("threshold") if run_json.is_file() else None


def embed_files(model: torch.nn.Module, state: dict[str, Any], files: list[Path], device, batch_size: int = 128, label: str = "embed") -> np.ndarray:
    """The embeddings ``(N, dim)`` float32 of image files (resized to the checkpoint's size, normalised like training)."""
    mode = "L" if state["channels"] == 1 else "RGB"
    out = []
    with Tracker(label, len(files)) as progress, torch.no_grad():
        for s in range(0, len(files), batch_size):
            chunk = files[s : s + batch_size]
            arrays = [read_image(f, mode) for f in chunk]
            x = (model.preprocess(arrays) if hasattr(model, "preprocess") else preprocess(arrays, tuple(state["img_size"]), state["mean"], state["std"])).to(device)
            out.append(model.embed(x).cpu().numpy().astype(np.float32))
            progress.advance(len(chunk))
    return np.concatenate(out) if out else np.zeros((0, state["embed_dim"]), np.float32)


def folder_labels(files: list[Path]) -> list[str]:
    """Each file's parent folder name: the identity of an image in identity folders."""
    return [f.parent.name for f in files]


# --------------------------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------------------------
def evaluate(cfg: EmbedEvalConfig) -> dict[str, Any]:
    """Retrieval (P@1, R@k, mAP@R) and verification (accuracy, ROC AUC, EER, TAR@FAR) on a split, and on a pairs
    file with the 10-fold protocol; writes metrics.json, roc.png, distances.png."""
    from vislab.metrics.embedding import pair_distance, roc_metrics, sample_pairs, verification_10fold
    from vislab.tasks.embed.report import plot_distances, plot_roc

    model, state, device, _ = load_embedder(cfg.checkpoint, cfg.device)
    dcfg = C.from_dict(EmbedDataConfig, state["config"]["data"])
    if cfg.data:  # another dataset, read at the checkpoint's size
        dcfg = dataclasses.replace(dcfg, data=cfg.data, format="auto", pairs="", img_size=state["img_size"][0], min_images=0)
    if cfg.pairs:
        dcfg = dataclasses.replace(dcfg, pairs=cfg.pairs)
    splits = load_embed_data(dcfg, training=False)
    src = splits.get(cfg.split)
    if src.channels != state["channels"]:
        raise DataError(f"dataset {src.name}: expected {state['channels']}-channel images like the checkpoint, got {src.channels}")
    distance = state["distance"]
    stream = EmbedStream(src, cfg.batch_size, train=False, device=device, mean=state["mean"], std=state["std"])
    with Tracker(f"eval {cfg.split}", len(src)) as progress:
        metrics = run_eval(EmbedTask(distance), model, stream, progress=progress)
    scalars = metrics.compute()
    name = f"eval-{Path(cfg.data).name}-{cfg.split}" if cfg.data else f"eval-{cfg.split}"  # another dataset: beside, not over, the run's
    out = Path(cfg.out) if cfg.out else run_dir_of(state) / name
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"split": cfg.split, "n": len(src), "identities": len(src.classes), "distance": distance, **scalars}
    try:
        i, j, same = sample_pairs(metrics.labels, 4000, seed=1)
    except DataError:  # no identity of the split has two images: retrieval numbers only (and the pairs file's)
        i = []
    if len(i):
        d = pair_distance(metrics.embeddings[i], metrics.embeddings[j], distance).numpy()
        roc = roc_metrics(d, same)
        plot_roc(roc["curve"]["fpr"], roc["curve"]["tpr"], out / "roc.png", f"{cfg.split}: AUC {roc['roc_auc']:.3f}, EER {roc['eer']:.3f}")
        thr = run_threshold(state)
        plot_distances(d, same, out / "distances.png", f"{cfg.split} pairs ({distance})", thr if thr is not None else scalars.get("verif_threshold"))
        result.update({k: roc[k] for k in ("tar_at_far", "far")})
    if splits.pairs is not None:
        a, b, issame, folds = read_pairs(splits.pairs, splits.root)
        files = sorted(set(a) | set(b))
        emb = torch.from_numpy(embed_files(model, state, [Path(f) for f in files], device, cfg.batch_size, "embed pairs"))
        pos = {f: k for k, f in enumerate(files)}
        d = pair_distance(emb[[pos[f] for f in a]], emb[[pos[f] for f in b]], distance).numpy()
        ver, roc = verification_10fold(d, issame, folds), roc_metrics(d, issame)
        result["pairs"] = {"file": str(splits.pairs), "n": len(a), "folds": folds, **ver, **{k: v for k, v in roc.items() if k != "curve"}}
        plot_roc(roc["curve"]["fpr"], roc["curve"]["tpr"], out / "pairs_roc.png", f"{Path(splits.pairs).name}: acc {ver['verif_acc']:.3f}, AUC {roc['roc_auc']:.3f}")
        plot_distances(d, issame, out / "pairs_distances.png", f"{Path(splits.pairs).name} ({distance})", ver["threshold"])
    atomic_write_text(out / "metrics.json", json.dumps(result, indent=1, default=float))
    return {"out": str(out), **result}


# --------------------------------------------------------------------------------------------
# embed / index / search
# --------------------------------------------------------------------------------------------
def _items_csv(path: Path, files: list[Path]) -> None:
    lines = ["path,label"] + [f"{csv_cell(os.path.abspath(f))},{csv_cell(lab)}" for f, lab in zip(files, folder_labels(files), strict=True)]
    atomic_write_text(path, "\n".join(lines) + "\n")


def embed(cfg: EmbedEmbedConfig) -> dict[str, Any]:
    """Embeddings of images: ``.npy`` (N, dim) float32, ``.items.csv`` (path, label = folder name), ``.meta.json``."""
    from vislab.core.io import atomic_path

    model, state, device, model_id = load_embedder(cfg.checkpoint, cfg.device, cfg.weights)
    files = expand_inputs(cfg.inputs)
    out = Path(cfg.out) if cfg.out else run_dir_of(state) / "embed" / "embeddings.npy"
    if out.suffix != ".npy":
        raise ConfigError(f"--out: expected a .npy file, got '{out}'")
    emb = embed_files(model, state, files, device, cfg.batch_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        np.save(f, emb)
    _items_csv(out.with_suffix(".items.csv"), files)
    meta = {"model_id": model_id, "checkpoint": state["path"], "distance": state["distance"], "dim": int(emb.shape[1]), "n": len(files)}
    atomic_write_text(out.with_suffix(".meta.json"), json.dumps(meta, indent=1))
    return {"out": str(out), "n": len(files), "dim": int(emb.shape[1]), "model_id": model_id}


def _read_embeddings(path: Path) -> tuple[np.ndarray, list[dict[str, Any]], dict[str, Any]]:
    meta_p, items_p = path.with_suffix(".meta.json"), path.with_suffix(".items.csv")
    for p in (meta_p, items_p):
        if not p.is_file():
            raise DataError(f"embeddings '{path}': expected '{p.name}' beside it (written by `vislab embed embed`), got none")
    try:
        emb = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise DataError(f"embeddings '{path}': expected a .npy array written by `vislab embed embed`, got an unreadable file ({e})") from None
    with open(items_p, newline="") as f:
        items = [{"path": r["path"], "label": r["label"]} for r in csv.DictReader(f)]
    meta = json.loads(meta_p.read_text())
    if emb.ndim != 2 or len(emb) != len(items):
        raise DataError(f"embeddings '{path}': expected (N, dim) with one row per item of '{items_p.name}' ({len(items)}), got shape {emb.shape}")
    return emb.astype(np.float32), items, meta


def index(cfg: EmbedIndexConfig) -> dict[str, Any]:
    """A FAISS index of images (embedded now) or of an embeddings file, saved with its items and model identity."""
    from vislab.tasks.embed.vector_index import EmbeddingIndex

    model, state, device, model_id = load_embedder(cfg.checkpoint, cfg.device, cfg.weights)
    out = Path(cfg.out) if cfg.out else run_dir_of(state) / "index"
    if cfg.update == "remove":
        idx = EmbeddingIndex.load(out)
        idx.check_query(int(state["embed_dim"]), model_id)
        gone = _paths_of(cfg.inputs)
        ids = [int(i) for i, it in zip(idx.ids, idx.items_of(idx.ids), strict=True) if it and os.path.abspath(it.get("path", "")) in gone]
        if not ids:
            raise DataError(f"index {out}: expected items with the paths of INPUTS to remove, got none of {len(gone)} path(s)")
        idx.remove(ids)
        idx.save(out)
        return {"out": str(out), "n": len(idx), "kind": idx.kind, "dim": idx.dim, "removed": len(ids)}
    if len(cfg.inputs) == 1 and cfg.inputs[0].endswith(".npy"):
        emb, items, meta = _read_embeddings(Path(cfg.inputs[0]))
        if meta.get("model_id") != model_id:
            raise DataError(f"embeddings '{cfg.inputs[0]}': expected vectors of this checkpoint's model ({model_id}), got ones of {meta.get('model_id')}")
    else:
        files = expand_inputs(cfg.inputs)
        emb = embed_files(model, state, files, device, cfg.batch_size)
        items = [{"path": os.path.abspath(f), "label": lab} for f, lab in zip(files, folder_labels(files), strict=True)]
    if cfg.update == "add":
        idx = EmbeddingIndex.load(out)
        idx.check_query(int(emb.shape[1]), model_id)
        idx.add(emb, items)
        idx.save(out)
        return {"out": str(out), "n": len(idx), "kind": idx.kind, "dim": idx.dim, "added": len(items)}
    tuning = {"nlist": cfg.nlist or None, "m": cfg.pq_m or None, "hnsw_m": cfg.hnsw_m, "lsh_bits": cfg.lsh_bits or None,
              "nprobe": cfg.nprobe or None, "ef_search": cfg.ef_search or None}
    idx = EmbeddingIndex.build(emb, items, kind=cfg.kind, distance=state["distance"], model_id=model_id, **tuning)
    idx.save(out)
    source = ({"checkpoint": cfg.checkpoint, "weights": os.path.abspath(state["path"])} if cfg.checkpoint.startswith("clip:")
              else {"checkpoint": os.path.abspath(state["path"])})
    atomic_write_text(out / "model.json", json.dumps({**source, "model_id": model_id}, indent=1))
    return {"out": str(out), "n": len(idx), "kind": cfg.kind, "dim": idx.dim}


def _paths_of(inputs: list[str]) -> set[str]:
    """Absolute paths of INPUTS: folders and globs expanded to their images, other names taken as they are (files
    already deleted can be taken out of an index)."""
    out: set[str] = set()
    for p in inputs:
        if Path(p).is_dir() or any(c in p for c in "*?["):
            out |= {os.path.abspath(f) for f in expand_inputs([p])}
        else:
            out.add(os.path.abspath(p))
    return out


def search(cfg: EmbedSearchConfig) -> dict[str, Any]:
    """The ``k`` nearest items of each query: ``search.json`` and ``neighbours.png`` (query, neighbours, distances)."""
    from vislab.tasks.embed.vector_index import EmbeddingIndex
    from vislab.tasks.embed.report import neighbour_grid

    folder = Path(cfg.index)
    idx = EmbeddingIndex.load(folder, mmap=cfg.mmap)
    if cfg.k < 1:
        raise ConfigError(f"-k: expected >= 1, got {cfg.k}")
    ckpt, weights = cfg.checkpoint, cfg.weights
    if not ckpt:
        mj = folder / "model.json"
        if not mj.is_file():
            raise ConfigError(f"search: expected --checkpoint (the index '{folder}' does not name its model), got none")
        source = json.loads(mj.read_text())
        ckpt, weights = source["checkpoint"], weights or source.get("weights", "")
    try:
        model, state, device, model_id = load_embedder(ckpt, cfg.device, weights)
    except CheckpointError as e:
        raise CheckpointError(f"{e} (the model of index '{folder}'; pass --checkpoint)") from None
    idx.check_query(int(state["embed_dim"]), model_id)
    if cfg.text:
        if not hasattr(model, "embed_text"):
            raise ConfigError(f"--text: expected an index built with a CLIP model (clip:ARCH), got one of {model_id}")
        texts = list(cfg.queries)
        q = model.embed_text(texts).cpu().numpy().astype(np.float32)
        files = [Path(t) for t in texts]  # shown as the query's caption
    else:
        files = expand_inputs(cfg.queries)
        q = embed_files(model, state, files, device, label="embed queries")
    dist, ids = idx.search(q, cfg.k, nprobe=cfg.nprobe or None, ef_search=cfg.ef_search or None)
    out = Path(cfg.out) if cfg.out else folder / "search"
    out.mkdir(parents=True, exist_ok=True)
    results, rows = [], []
    mode = "L" if state["channels"] == 1 else "RGB"
    labels = {str(it.get("label")) for it in idx.items_of(idx.ids)}
    for f, d_row, i_row in zip(files, dist, ids, strict=True):
        found = [(d, it) for d, it in zip(d_row, idx.items_of(i_row), strict=True) if it is not None]  # -1: fewer than k found (IVF)
        neigh = [{"rank": r + 1, "distance": float(d), **it} for r, (d, it) in enumerate(found)]
        results.append({"query": str(f), "neighbours": neigh})
        if cfg.text:
            results[-1]["query"] = str(f)
        if len(rows) < 16:
            qlab = f.parent.name if not cfg.text else None
            known = qlab is not None and qlab in labels  # a query from a folder named like an identity of the index
            cells = [(_thumb(n["path"], mode), f"{n['distance']:.3f} {n.get('label', '')}", (n.get("label") == qlab) if known else None) for n in neigh]
            rows.append((np.full((8, 8, 3), 255, np.uint8) if cfg.text else _thumb(str(f), mode), f"query {str(f)[:24] if cfg.text else f.name[:14]}", cells))
    atomic_write_text(out / "search.json", json.dumps(results, indent=1))
    png = neighbour_grid(rows, out / "neighbours.png")
    return {"out": str(out), "results": results, "png": str(png)}


def _thumb(path: str, mode: str) -> np.ndarray:
    try:
        a = read_image(path, mode)
    except DataError:
        return np.full((8, 8, 1 if mode == "L" else 3), 200, np.uint8)  # an item whose file is gone: a grey tile
    return a


# --------------------------------------------------------------------------------------------
# verify / cluster / fewshot / explain
# --------------------------------------------------------------------------------------------
def verify(cfg: EmbedVerifyConfig) -> dict[str, Any]:
    """The distance of two images, the decision, and the threshold it used."""
    from vislab.metrics.embedding import pair_distance

    model, state, device, _ = load_embedder(cfg.checkpoint, cfg.device)
    thr = cfg.threshold
    if thr <= 0:
        thr = run_threshold(state) or 0.0
        if not thr:
            raise ConfigError(f"--threshold: expected a value, or a run with a validation threshold, got neither ('{run_dir_of(state) / 'run.json'}' has none)")
    e = torch.from_numpy(embed_files(model, state, [Path(cfg.image_a), Path(cfg.image_b)], device, label="verify"))
    d = float(pair_distance(e[:1], e[1:], state["distance"])[0])
    return {"distance": d, "threshold": float(thr), "same": d <= thr, "metric": state["distance"]}


def _choose_k(emb: np.ndarray, distance: str) -> int:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    best, best_s = 2, -2.0
    for k in range(2, min(20, len(emb) - 1) + 1):
        lab = KMeans(k, n_init=4, random_state=0).fit_predict(emb)
        s = silhouette_score(emb, lab, metric=distance)
        if s > best_s:
            best, best_s = k, s
    return best


def cluster(cfg: EmbedClusterConfig) -> dict[str, Any]:
    """Cluster images by embedding: clusters.csv, clusters/<k>/ (links to the images), map.png; NMI / ARI against
    the folder names when the images sit in more than one folder."""
    from sklearn.cluster import DBSCAN, AgglomerativeClustering, KMeans

    from vislab.metrics.embedding import clustering_metrics
    from vislab.tasks.embed.report import plot_map, project_2d

    model, state, device, _ = load_embedder(cfg.checkpoint, cfg.device)
    files = expand_inputs(cfg.inputs)
    if len(files) < 3:
        raise DataError(f"cluster: expected at least 3 images, got {len(files)}")
    emb = embed_files(model, state, files, device, cfg.batch_size)
    names = folder_labels(files)
    known = sorted(set(names))
    truth = np.array([known.index(n) for n in names]) if len(known) > 1 else None
    distance = state["distance"]
    if cfg.method == "dbscan":
        from sklearn.neighbors import NearestNeighbors

        eps = cfg.eps or float(np.median(NearestNeighbors(n_neighbors=min(6, len(emb)), metric=distance).fit(emb).kneighbors(emb)[0][:, -1]))
        labels = DBSCAN(eps=eps, min_samples=3, metric=distance).fit_predict(emb)
    else:
        k = cfg.clusters or (len(known) if truth is not None else _choose_k(emb, distance))
        if not 2 <= k <= len(files):
            raise ConfigError(f"--clusters: expected 2..{len(files)} (the number of images), got {k}")
        labels = (KMeans(k, n_init=10, random_state=0).fit_predict(emb) if cfg.method == "kmeans"
                  else AgglomerativeClustering(k, metric=distance, linkage="average").fit_predict(emb))
    out = Path(cfg.out) if cfg.out else run_dir_of(state) / "cluster"
    if (out / "clusters").exists():
        shutil.rmtree(out / "clusters")  # an earlier clustering's folders would mix with this one's
    out.mkdir(parents=True, exist_ok=True)
    for k, (f, c) in enumerate(zip(files, labels, strict=True)):
        d = out / "clusters" / ("noise" if c < 0 else f"{c:03d}")
        d.mkdir(parents=True, exist_ok=True)
        link = d / f"{k:05d}_{f.parent.name}_{f.name}"  # unique: two folders may hold files of one name
        try:
            os.symlink(f.resolve(), link)
        except OSError:  # no symlinks here (some file systems): a copy
            shutil.copyfile(f, link)
    atomic_write_text(out / "clusters.csv", "path,cluster,label\n" + "".join(f"{csv_cell(str(f))},{c},{csv_cell(n)}\n" for f, c, n in zip(files, labels, names, strict=True)))
    xy = project_2d(emb, cfg.map)
    n_clusters = len(set(labels.tolist()) - {-1})
    png = plot_map(xy, labels, out / "map.png", f"{cfg.method}: {n_clusters} clusters", second=truth, second_title="known labels (folders)" if truth is not None else "")
    scores = clustering_metrics(truth, labels) if truth is not None else {}
    result = {"n": len(files), "clusters": n_clusters, "noise": int((labels < 0).sum()), **scores}
    atomic_write_text(out / "cluster.json", json.dumps({"method": cfg.method, **result}, indent=1))
    return {"out": str(out), "png": str(png), **result}


def _class_files(folder: str, what: str) -> dict[str, list[Path]]:
    root = Path(folder).expanduser()
    if not folder or not root.is_dir():
        raise ConfigError(f"--{what}: expected a folder of class folders, got '{folder}'")
    from vislab.data.classify.formats.imagefolder import class_dirs, list_images

    out = {d.name: list_images(d) for d in class_dirs(root)}
    out = {k: v for k, v in out.items() if v}
    if len(out) < 2:
        raise DataError(f"--{what} '{root}': expected class folders of images for at least 2 classes, got {len(out)}")
    return out


def fewshot(cfg: EmbedFewshotConfig) -> dict[str, Any]:
    """Nearest-prototype classification of new classes: for each ``--shots`` k, ``--episodes`` draws of k support
    images per class; a prototype is the mean embedding of a class's support images. No training."""
    from vislab.metrics.embedding import pairwise_distance

    model, state, device, _ = load_embedder(cfg.checkpoint, cfg.device)
    support, query = _class_files(cfg.support, "support"), _class_files(cfg.query, "query")
    unknown = sorted(set(query) - set(support))
    if unknown:
        raise DataError(f"--query: expected classes of the support folder, got {unknown[:5]} that it does not have")
    classes = sorted(support)
    s_files = [f for c in classes for f in support[c]]
    s_lab = np.array([classes.index(c) for c in classes for _ in support[c]])
    q_files = [f for c in sorted(query) for f in query[c]]
    q_lab = np.array([classes.index(c) for c in sorted(query) for _ in query[c]])
    distance = state["distance"]
    se = torch.from_numpy(embed_files(model, state, s_files, device, cfg.batch_size, "embed support"))
    qe = torch.from_numpy(embed_files(model, state, q_files, device, cfg.batch_size, "embed queries"))

    def classify(idx_per_class: list[np.ndarray]) -> np.ndarray:
        protos = torch.stack([se[i].mean(0) for i in idx_per_class])
        if distance == "cosine":
            protos = torch.nn.functional.normalize(protos, dim=1)
        return pairwise_distance(qe, protos, distance).argmin(1).numpy()

    rng = np.random.default_rng(cfg.seed)
    per_class = [np.flatnonzero(s_lab == c) for c in range(len(classes))]
    shots: dict[str, Any] = {}
    for k in cfg.shots:
        if k < 1:
            raise ConfigError(f"--shots: expected values >= 1, got {k}")
        accs = [float((classify([rng.choice(ix, min(k, len(ix)), replace=False) for ix in per_class]) == q_lab).mean()) for _ in range(cfg.episodes)]
        shots[f"{k}-shot"] = {"acc": float(np.mean(accs)), "std": float(np.std(accs)), "episodes": cfg.episodes,
                              "fewer": [classes[c] for c, ix in enumerate(per_class) if len(ix) < k]}
    pred = classify(per_class)  # every support image: the predictions file
    out = Path(cfg.out) if cfg.out else run_dir_of(state) / "fewshot"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "predictions.csv", "path,label,predicted\n" + "".join(
        f"{csv_cell(str(f))},{csv_cell(classes[t])},{csv_cell(classes[p])}\n" for f, t, p in zip(q_files, q_lab, pred, strict=True)))
    result = {"classes": len(classes), "support": len(s_files), "queries": len(q_files), "shots": shots, "all_support_acc": float((pred == q_lab).mean())}
    atomic_write_text(out / "fewshot.json", json.dumps(result, indent=1))
    return {"out": str(out), **result}


class _Embedding(torch.nn.Module):
    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(x).float()
        return torch.nn.functional.normalize(z, dim=1)


def explain(cfg: EmbedExplainConfig) -> dict[str, Any]:
    """Similarity maps: a CAM of ``cos(embed(a), embed(b))`` on each image of the pair -- the regions that make them close."""
    from vislab.explain.cam import EmbeddingTarget, check_method, compute_maps
    from vislab.explain.plots import plot_maps, to_display
    from vislab.metrics.embedding import pair_distance

    model, state, device, _ = load_embedder(cfg.checkpoint, cfg.device)
    method = check_method(cfg.method)
    mode = "L" if state["channels"] == 1 else "RGB"
    x = preprocess([read_image(cfg.image_a, mode), read_image(cfg.image_b, mode)], tuple(state["img_size"]), state["mean"], state["std"]).to(device)
    net = _Embedding(model)
    bb = model.backbone
    inner = getattr(bb, "cam_layer", None) or (bb.feature_modules[-1] if getattr(bb, "feature_modules", ()) else None)
    layer = cfg.layer or (f"net.backbone.{inner}" if inner else None)  # None: the last conv
    with torch.no_grad():
        e = net(x)
    targets = [EmbeddingTarget(e[1].detach(), "similarity to B"), EmbeddingTarget(e[0].detach(), "similarity to A")]
    maps, _ = compute_maps(net, x, method, targets, layer=layer)
    d = float(pair_distance(e[:1], e[1:], state["distance"])[0])
    shown = to_display(x.cpu(), state["mean"], state["std"])
    a, b = Path(cfg.image_a), Path(cfg.image_b)
    out = Path(cfg.out) if cfg.out else run_dir_of(state) / "explain" / f"{a.stem}_vs_{b.stem}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    both = np.concatenate([shown[0], shown[1]], 1)
    png = plot_maps(both, {f"{method}: A | B (what is close to the other)": np.concatenate([maps[0], maps[1]], 1)}, out,
                    f"{a.name} vs {b.name}: {state['distance']} distance {d:.3f}")
    return {"out": str(png), "distance": d}
