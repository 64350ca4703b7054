"""Metric learning, face verification and image retrieval: ``vislab embed train | eval | embed | index | search |
verify | cluster | fewshot | explain | lr-find``.

Python API: ``train(cfg)`` (an :class:`EmbedConfig`), ``evaluate``, ``embed``, ``index``, ``search``, ``verify``,
``cluster``, ``fewshot``, ``explain`` (each with its config); ``SPEC`` is the task's :class:`~vislab.tasks.base.TaskSpec`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vislab.tasks import base
from vislab.tasks.embed.config import (
    EmbedClusterConfig,
    EmbedConfig,
    EmbedEmbedConfig,
    EmbedEvalConfig,
    EmbedExplainConfig,
    EmbedFewshotConfig,
    EmbedIndexConfig,
    EmbedModelConfig,
    EmbedSearchConfig,
    EmbedVerifyConfig,
)
from vislab.tasks.embed.infer import cluster, embed, evaluate, explain, fewshot, index, search, verify
from vislab.tasks.embed.task import EmbedTask, build_model, setup, validate

__all__ = ["SPEC", "EmbedConfig", "EmbedModelConfig", "EmbedTask", "build_model", "cluster", "embed", "evaluate", "explain", "fewshot",
           "index", "search", "train", "verify"]


def train(cfg: EmbedConfig, callbacks: list | None = None, folder: str | None = None) -> Path:
    """Train an embedding model; returns the run folder (see :func:`vislab.tasks.base.train`)."""
    return base.train(SPEC, cfg, callbacks, folder)


def _nums(d: dict[str, Any], prefix: str = "") -> str:
    keys = ("p_at_1", "r_at_5", "map_at_r", "verif_acc", "roc_auc", "eer")
    return "  ".join(f"{k} {d[prefix + k]:.4f}" for k in keys if prefix + k in d)


def _summary(s: dict[str, Any]) -> str:
    which = "test" if "test_p_at_1" in s else "val" if str(s.get("best_metric", "")).startswith("val_") else "train"
    nums = _nums(s, "test_") if which == "test" else f"best {s.get('best_metric', '')} {s.get('best_value') or 0:.4f}"
    thr = f"  (verification threshold {s['threshold']:.4f})" if "threshold" in s else ""
    seen = " (identities unseen in training)" if which != "train" and s.get("split_by", "identity") == "identity" else ""
    return f"done: {which}{seen} {nums}{thr} in {s.get('total_seconds', 0):.1f}s"


def _show_eval(cfg: EmbedEvalConfig, r: dict[str, Any]) -> list[str]:
    lines = [f"{cfg.split}: {r['n']} images of {r['identities']} identities ({r['distance']})  {_nums(r)}"]
    if "pairs" in r:
        p = r["pairs"]
        lines.append(f"pairs {p['file']}: {p['n']} pairs, {p['folds']}-fold  accuracy {p['verif_acc']:.4f} +- {p['verif_acc_std']:.4f}  "
                     f"AUC {p['roc_auc']:.4f}  EER {p['eer']:.4f}  TAR@FAR={p['far']:g} {p['tar_at_far']:.4f}")
    return [*lines, f"written: {r['out']}/metrics.json, roc.png, distances.png" + (", pairs_roc.png, pairs_distances.png" if "pairs" in r else "")]


def _show_embed(cfg: EmbedEmbedConfig, r: dict[str, Any]) -> list[str]:
    return [f"{r['n']} embeddings of {r['dim']} dimensions (model {r['model_id']}); written: {r['out']} (+ .items.csv, .meta.json)"]


def _show_index(cfg: EmbedIndexConfig, r: dict[str, Any]) -> list[str]:
    change = f"added {r['added']}, " if "added" in r else f"removed {r['removed']}, " if "removed" in r else ""
    return [f"{r['kind']} index of {r['n']} items ({r['dim']}-d; {change}no rebuild); written: {r['out']}" if change else
            f"{r['kind']} index of {r['n']} items ({r['dim']}-d); written: {r['out']}"]


def _show_search(cfg: EmbedSearchConfig, r: dict[str, Any]) -> list[str]:
    lines = []
    for res in r["results"][:5]:
        lines.append(f"{res['query']}: " + ", ".join(f"{Path(n['path']).parent.name}/{Path(n['path']).name} ({n['distance']:.3f})"
                                                     for n in res["neighbours"][:5]))
    if len(r["results"]) > 5:
        lines.append(f"... {len(r['results']) - 5} more queries")
    return [*lines, f"written: {r['out']}/search.json, {r['png']}"]


def _show_verify(cfg: EmbedVerifyConfig, r: dict[str, Any]) -> list[str]:
    verdict = "same identity" if r["same"] else "different identities"
    return [f"{verdict}: {r['metric']} distance {r['distance']:.4f} {'<=' if r['same'] else '>'} threshold {r['threshold']:.4f}"]


def _show_cluster(cfg: EmbedClusterConfig, r: dict[str, Any]) -> list[str]:
    known = f"  NMI {r['nmi']:.4f}  ARI {r['ari']:.4f} (against the folder names)" if "nmi" in r else ""
    noise = f" + {r['noise']} noise" if r["noise"] else ""
    return [f"{r['n']} images in {r['clusters']} clusters{noise}{known}",
            f"written: {r['out']}/clusters.csv, clusters/, {r['png']}"]


def _show_fewshot(cfg: EmbedFewshotConfig, r: dict[str, Any]) -> list[str]:
    lines = [f"{r['classes']} new classes, {r['support']} support and {r['queries']} query images"]
    lines += [f"  {k}: accuracy {v['acc']:.4f} +- {v['std']:.4f} over {v['episodes']} draws" for k, v in r["shots"].items()]
    return [*lines, f"  all support images: accuracy {r['all_support_acc']:.4f}", f"written: {r['out']}/fewshot.json, predictions.csv"]


def _show_explain(cfg: EmbedExplainConfig, r: dict[str, Any]) -> list[str]:
    return [f"distance {r['distance']:.4f}; written: {r['out']}"]


SPEC = base.TaskSpec(
    name="embed",
    config=EmbedConfig,
    setup=setup,
    validate=validate,
    help="Metric learning: train embeddings (ArcFace, triplet, contrastive, center, ...), verify faces, search and cluster images.",
    train_help="""Train an embedding model on identities; results go to runs/embed/<name>/.

    Val and test identities are never seen in training (--split-by identity): the numbers say how well the
    model tells apart people (or objects) it has not met.

    \b
    Examples:
      vislab embed train                                          # generated identities, small CNN, ArcFace
      vislab embed train --data ./faces --model resnet18 --loss arcface --embed-dim 128
      vislab embed train --data ./lfw --min-images 2 --loss triplet --miner semihard
      vislab embed train --loss contrastive --m-per-class 2      # Siamese pairs
      vislab embed train --resume runs/embed/exp
    """,
    monitor="val_p_at_1",
    summary=_summary,
    report_files=("report.html", "curves.png", "roc.png", "distances.png", "map.png", "neighbours.png", "checkpoints/best.safetensors"),
    modes=(
        base.Mode("eval", EmbedEvalConfig, evaluate, _show_eval, """Retrieval (P@1, R@k, mAP@R) and verification (accuracy, ROC AUC, EER, TAR@FAR) of CHECKPOINT.

    With --pairs (or an LFW folder's pairs.txt): the 10-fold protocol (threshold chosen on 9 folds, tested on the 10th).

    \b
    Examples:
      vislab embed eval runs/embed/exp
      vislab embed eval runs/embed/exp --data ./lfw --pairs ./lfw/pairs.txt
    """),
        base.Mode("embed", EmbedEmbedConfig, embed, _show_embed, "Embeddings of INPUTS: a .npy of vectors, a .items.csv of paths and labels (folder names), a .meta.json."),
        base.Mode("index", EmbedIndexConfig, index, _show_index, """A FAISS index (flat, ivf, ivfpq, hnsw, lsh) of INPUTS (images, or one .npy from `embed embed`).

    \b
    Example:
      vislab embed index runs/embed/exp ./gallery --kind hnsw --out gallery_index
    """),
        base.Mode("search", EmbedSearchConfig, search, _show_search, """The -k nearest items of each of QUERIES in INDEX: search.json and a picture of the neighbours.

    \b
    Example:
      vislab embed search gallery_index query.jpg -k 8
    """),
        base.Mode("verify", EmbedVerifyConfig, verify, _show_verify, "Are IMAGE_A and IMAGE_B the same identity? The distance, the decision and the threshold used."),
        base.Mode("cluster", EmbedClusterConfig, cluster, _show_cluster, "Cluster INPUTS by embedding (kmeans, agglomerative, dbscan): clusters.csv, cluster folders, a 2-D map."),
        base.Mode("fewshot", EmbedFewshotConfig, fewshot, _show_fewshot, """Classify new classes from a few examples each (nearest prototype, no training).

    \b
    Example:
      vislab embed fewshot runs/embed/exp --support ./new/support --query ./new/query --shots 1,5
    """),
        base.Mode("explain", EmbedExplainConfig, explain, _show_explain, "Similarity maps: the regions of IMAGE_A and IMAGE_B that make them close (a CAM of their cosine similarity)."),
    ),
)
