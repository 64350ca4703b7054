"""Pictures of embeddings: ROC curve, distance histograms of matched / mismatched pairs, a 2-D map, neighbour
grids -- for the training report, ``eval``, ``cluster`` and ``search``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vislab.core.errors import DataError
from vislab.report import html as H
from vislab.report.plots import _plt, _save, plot_curves


def plot_roc(fpr: Sequence[float], tpr: Sequence[float], path: Path, title: str) -> Path:
    """The ROC curve of verification (log-scaled false-accept axis, where TAR@FAR is read)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4.2))
    f = np.maximum(np.asarray(fpr, dtype=float), 1e-4)
    ax.plot(f, tpr, lw=1.8)
    ax.set(xscale="log", xlim=(1e-4, 1), ylim=(0, 1.02), xlabel="false accept rate", ylabel="true accept rate", title=title)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def plot_distances(dist: np.ndarray, same: np.ndarray, path: Path, title: str, threshold: float | None = None) -> Path:
    """Histograms of the distances of matched and mismatched pairs (and the decision threshold)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    bins = np.linspace(float(dist.min()), float(dist.max()) + 1e-6, 41)
    ax.hist(dist[same], bins=bins, alpha=0.6, label=f"same identity ({int(same.sum())})", color="tab:green")
    ax.hist(dist[~same], bins=bins, alpha=0.6, label=f"different ({int((~same).sum())})", color="tab:red")
    if threshold is not None:
        ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:.3f}")
    ax.set(xlabel="distance", ylabel="pairs", title=title)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, path)


def project_2d(emb: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """A 2-D map of the embeddings: t-SNE (scikit-learn), PCA, or UMAP (umap-learn, when installed)."""
    from vislab.core.errors import ConfigError

    if len(emb) < 3 or method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(emb) if len(emb) >= 2 else np.zeros((len(emb), 2))
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise ConfigError("--map umap: expected umap-learn to be installed (pip install umap-learn), got no such module; use --map tsne") from None
        return umap.UMAP(random_state=seed).fit_transform(emb)
    from sklearn.manifold import TSNE

    return TSNE(n_components=2, perplexity=min(30.0, max(2.0, (len(emb) - 1) / 3)), init="pca", random_state=seed).fit_transform(emb)


def plot_map(xy: np.ndarray, colours: np.ndarray, path: Path, title: str, names: Sequence[str] | None = None, second: np.ndarray | None = None,
             second_title: str = "") -> Path:
    """Points of a 2-D map coloured by ``colours`` (cluster or label ids; -1 grey: noise); with ``second``, a
    second panel coloured by it (e.g. the known labels beside the clusters)."""
    plt = _plt()
    panels = [(colours, title)] + ([(second, second_title)] if second is not None else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.6), squeeze=False)
    for ax, (c, t) in zip(axes[0], panels, strict=True):
        c = np.asarray(c)
        noise = c < 0
        ax.scatter(xy[noise, 0], xy[noise, 1], s=6, c="0.75")
        ax.scatter(xy[~noise, 0], xy[~noise, 1], s=8, c=c[~noise] % 20, cmap="tab20", vmin=0, vmax=19)
        ax.set(title=t, xticks=[], yticks=[])
    return _save(fig, path)


def neighbour_grid(rows: list[tuple[np.ndarray, str, list[tuple[np.ndarray, str, bool | None]]]], path: Path) -> Path:
    """One row per query: the query image, then its neighbours with their captions (distance, label); a neighbour's
    frame is green / red when its label is / is not the query's (``None``: unknown)."""
    plt = _plt()
    cols = 1 + max(len(r[2]) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.45 * cols, 1.6 * len(rows)), squeeze=False)
    for r, (q, qcap, neigh) in enumerate(rows):
        for c in range(cols):
            ax = axes[r][c]
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                img, cap, ok = q, qcap, None
            elif c - 1 < len(neigh):
                img, cap, ok = neigh[c - 1]
            else:
                ax.axis("off")
                continue
            ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None)
            ax.set_title(cap, fontsize=6)
            colour = {True: "tab:green", False: "tab:red", None: "0.3"}[ok] if c else "tab:blue"
            for s in ax.spines.values():
                s.set_edgecolor(colour), s.set_linewidth(2.5 if c == 0 or ok is not None else 0.8)
    return _save(fig, path)


def _hwc(img: torch.Tensor) -> np.ndarray:
    return img.permute(1, 2, 0).cpu().numpy()


def write_training_report(run_dir: Path, result: Any, final: dict[str, Any], metrics: Any, src: Any, distance: str,
                          mean: Sequence[float], std: Sequence[float]) -> Path:
    """curves.png, roc.png, distances.png, map.png, neighbours.png of the held-out identities, and report.html."""
    from vislab.metrics.embedding import pair_distance, pairwise_distance, roc_metrics, sample_pairs

    run_dir = Path(run_dir)
    sections: list[tuple[str, str]] = []
    if result.history:
        sections.append(("Learning curves", H.picture(plot_curves(result.history, run_dir / "curves.png", title=f"{run_dir.name}: learning curves"))))
    if metrics is not None and src is not None and len(metrics.labels) > 2:
        emb, labels = metrics.embeddings, metrics.labels
        which = "test" if "test_p_at_1" in final else "val"
        try:
            i, j, same = sample_pairs(labels, 4000, seed=1)
        except DataError:  # no identity with two images: no matched pair
            i = []
        if len(i):
            d = pair_distance(emb[i], emb[j], distance).numpy()
            roc = roc_metrics(d, same)
            sections.append((f"ROC of verification ({which} identities)", H.picture(plot_roc(roc["curve"]["fpr"], roc["curve"]["tpr"], run_dir / "roc.png",
                             f"{which}: AUC {roc['roc_auc']:.3f}, EER {roc['eer']:.3f}, TAR@FAR=1e-3 {roc['tar_at_far']:.3f}"))))
            sections.append(("Distances of matched and mismatched pairs", H.picture(plot_distances(d, same, run_dir / "distances.png",
                             f"{which} pairs ({distance} distance)", final.get("threshold")))))
        pick = np.arange(len(labels)) if len(labels) <= 2000 else np.random.default_rng(0).choice(len(labels), 2000, replace=False)
        xy = project_2d(emb[pick].numpy())
        sections.append((f"Embeddings in 2-D (t-SNE, {which} identities, coloured by identity)",
                         H.picture(plot_map(xy, labels[pick].numpy(), run_dir / "map.png", f"{len(pick)} {which} images, {len(torch.unique(labels))} identities"))))
        queries = list(range(0, len(emb), max(1, len(emb) // 8)))[:8]  # spread over the identities (grouped in order)
        dmat = pairwise_distance(emb[queries], emb, distance)
        rows = []
        for qi, q in enumerate(queries):
            order = [int(k) for k in torch.argsort(dmat[qi]) if int(k) != q][:6]
            rows.append((_hwc(src.get(q)), f"query {src.classes[int(labels[q])]}",
                         [(_hwc(src.get(k)), f"{float(dmat[qi, k]):.3f} {src.classes[int(labels[k])]}", bool(labels[k] == labels[q])) for k in order]))
        sections.append(("Nearest neighbours (held-out identities; green: same identity)", H.picture(neighbour_grid(rows, run_dir / "neighbours.png"))))
    return H.run_report(run_dir, f"vislab embed: {run_dir.name}", result, sections, headline=("test_", "best", "threshold"))
