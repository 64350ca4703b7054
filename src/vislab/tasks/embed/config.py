"""Metric learning's configs: training (data, model, train, run) and each command's."""

from __future__ import annotations

from dataclasses import dataclass, field

from vislab.core.config import opt
from vislab.data.embed import EmbedDataConfig
from vislab.engine.config import RunConfig, TrainConfig
from vislab.models.embed.losses import LOSSES, MINERS

DISTANCES = ("cosine", "euclidean")
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass
class EmbedModelConfig:
    """The embedding network and its loss."""

    model: str = opt("small_cnn", "backbone: a classifier of the zoo (`vislab models list --task classify`) or timm:<name>; its classifier is replaced by the embedding head")
    stem: str = opt("auto", "input stem of the backbone: cifar (small images), imagenet, or auto (cifar up to 64 px)", choices=("auto", "cifar", "imagenet"))
    width: int = opt(0, "width of small_cnn (0: its default)")
    embed_dim: int = opt(128, "embedding size")
    bn: bool = opt(True, "batch norm after the embedding layer")
    embed_dropout: float = opt(0.0, "dropout after the embedding layer")
    loss: str = opt("arcface", "training loss: " + ", ".join(LOSSES) + " (softmax is the baseline; contrastive = Siamese pairs, triplet = triplets)", choices=LOSSES)
    miner: str = opt("auto", "pair / triplet mining (auto: semihard for triplet, multi-similarity for multisimilarity, none otherwise)", choices=MINERS)
    margin: float = opt(0.0, "the loss's margin (0: its default: arcface 28.6 degrees, cosface 0.35, triplet 0.2, contrastive 1.0, ...)")
    scale: float = opt(0.0, "the loss's scale (arcface / cosface logit scale, default 16; sphereface: PML's; ntxent: its temperature, default 0.07)")
    center_weight: float = opt(0.01, "--loss center: weight of the center loss beside the softmax")
    distance: str = opt("cosine", "distance between embeddings for evaluation, search and verification", choices=DISTANCES)
    weights: str = opt("", "start the backbone from these weights: a vislab classify run or checkpoint, or a .pth/.safetensors state dict")


def _train_defaults() -> TrainConfig:
    return TrainConfig(epochs=15, optimizer="adamw", lr=2e-3, weight_decay=5e-4, scheduler="onecycle")


@dataclass
class EmbedConfig:
    """``vislab embed train``: everything a metric-learning run is made of."""

    data: EmbedDataConfig = field(default_factory=lambda: EmbedDataConfig(batch_size=64))
    model: EmbedModelConfig = field(default_factory=EmbedModelConfig)
    train: TrainConfig = field(default_factory=_train_defaults)
    run: RunConfig = field(default_factory=RunConfig)


@dataclass
class EmbedEvalConfig:
    """``vislab embed eval``: retrieval and verification numbers of a checkpoint."""

    checkpoint: str = opt("", "checkpoint file or run folder (uses checkpoints/best.safetensors)", cli=False)
    data: str = opt("", "dataset (default: the one the checkpoint was trained on, its split)")
    split: str = opt("test", "split to evaluate (identities unseen in training by default)", choices=("train", "val", "test"))
    pairs: str = opt("", "verification pairs (LFW pairs.txt or CSV path_a,path_b,same) evaluated with the 10-fold protocol (default: pairs drawn from the split; an LFW folder's pairs.txt)")
    batch_size: int = opt(256, "batch size")
    device: str = opt("auto", "device", choices=DEVICES)
    out: str = opt("", "folder for metrics.json, roc.png, distances.png (default: <run>/eval-<split>, with --data <run>/eval-<data>-<split>)")


@dataclass
class EmbedEmbedConfig:
    """``vislab embed embed``: embeddings of images, for any use."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    inputs: list[str] = opt([], "image files, folders or glob patterns", cli=False)
    out: str = opt("", "output .npy (beside it: <name>.items.csv with path,label; default: <run>/embed/embeddings.npy)")
    weights: str = opt("", "with CHECKPOINT clip:ARCH (an open_clip architecture, e.g. clip:ViT-B-32): its local weights file (nothing is downloaded)")
    batch_size: int = opt(128, "batch size")
    device: str = opt("auto", "device", choices=DEVICES)


@dataclass
class EmbedIndexConfig:
    """``vislab embed index``: a searchable FAISS index of images (or of an embeddings file)."""

    checkpoint: str = opt("", "checkpoint file or run folder that embeds the images (and, later, the queries); or clip:ARCH with --weights (zero-shot, text queries)", cli=False)
    inputs: list[str] = opt([], "image files, folders or globs; or one .npy written by `vislab embed embed`", cli=False)
    weights: str = opt("", "with CHECKPOINT clip:ARCH (an open_clip architecture, e.g. clip:ViT-B-32): its local weights file (nothing is downloaded)")
    kind: str = opt("flat", "index: flat (exact), ivf, ivfpq (compressed), hnsw (graph), lsh (binary hashing)", choices=("flat", "ivf", "ivfpq", "hnsw", "lsh"))
    out: str = opt("", "index folder (default: <run>/index)")
    nlist: int = opt(0, "ivf / ivfpq: inverted lists (0: about 4 x sqrt(N))")
    pq_m: int = opt(0, "ivfpq: sub-vectors of the product quantiser, a divisor of the dimension (0: about dim / 4; more: better recall, slower build)")
    hnsw_m: int = opt(32, "hnsw: neighbours per node of the graph")
    lsh_bits: int = opt(0, "lsh: bits of the hash (0: 2 x dim; more: better recall)")
    nprobe: int = opt(0, "ivf / ivfpq: lists scanned per query, saved with the index (0: about sqrt(nlist))")
    ef_search: int = opt(0, "hnsw: candidates per query, saved with the index (0: FAISS's 16 raised to 64)")
    update: str = opt("new", "new: build the index (replacing one at --out); add: add INPUTS to the index at --out; remove: take INPUTS (their paths) out of it -- no rebuild (remove: not hnsw)", choices=("new", "add", "remove"))
    batch_size: int = opt(128, "batch size")
    device: str = opt("auto", "device", choices=DEVICES)


@dataclass
class EmbedSearchConfig:
    """``vislab embed search``: the nearest neighbours of query images in an index."""

    index: str = opt("", "index folder written by `vislab embed index`", cli=False)
    queries: list[str] = opt([], "query images (files, folders, globs), or with --text sentences", cli=False)
    k: int = opt(8, "neighbours per query")
    nprobe: int = opt(0, "ivf / ivfpq: lists scanned per query for this search (0: the index's)")
    ef_search: int = opt(0, "hnsw: candidates per query for this search (0: the index's)")
    text: bool = opt(False, "the QUERIES are texts, embedded by the CLIP model of a clip:ARCH index (text-to-image search)")
    checkpoint: str = opt("", "the model that embeds the queries (default: the one that built the index)")
    weights: str = opt("", "with CHECKPOINT clip:ARCH (an open_clip architecture, e.g. clip:ViT-B-32): its local weights file (nothing is downloaded)")
    out: str = opt("", "folder for search.json and the neighbour grids (default: <index>/search)")
    mmap: bool = opt(False, "memory-map the index instead of reading it into memory (large indexes; read-only)")
    device: str = opt("auto", "device", choices=DEVICES)


@dataclass
class EmbedVerifyConfig:
    """``vislab embed verify``: are two images the same identity?"""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    image_a: str = opt("", "first image", cli=False)
    image_b: str = opt("", "second image", cli=False)
    threshold: float = opt(0.0, "same identity when the distance is at most this (0: the run's threshold, chosen on its validation pairs)")
    device: str = opt("auto", "device", choices=DEVICES)


@dataclass
class EmbedClusterConfig:
    """``vislab embed cluster``: group images by their embeddings."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    inputs: list[str] = opt([], "image files, folders or globs (images in sub-folders: the folder names are the known labels)", cli=False)
    method: str = opt("kmeans", "clustering: kmeans, agglomerative (both need --clusters), dbscan (needs --eps)", choices=("kmeans", "agglomerative", "dbscan"))
    clusters: int = opt(0, "number of clusters for kmeans / agglomerative (0: as many as known labels, else chosen by silhouette)")
    eps: float = opt(0.0, "dbscan: neighbourhood radius in the embedding distance (0: the median distance to the 5th neighbour)")
    map: str = opt("tsne", "2-D map of the embeddings: tsne, pca, umap (needs umap-learn)", choices=("tsne", "pca", "umap"))
    out: str = opt("", "folder for clusters.csv and map.png (default: <run>/cluster)")
    batch_size: int = opt(128, "batch size")
    device: str = opt("auto", "device", choices=DEVICES)


@dataclass
class EmbedFewshotConfig:
    """``vislab embed fewshot``: classify new classes from a few examples each (prototypes, no training)."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    support: str = opt("", "folder of class folders with the example images")
    query: str = opt("", "folder of class folders with the images to classify (their folder names score the predictions)")
    shots: list[int] = opt([1, 5], "examples per class to use, one experiment each (comma list)")
    episodes: int = opt(20, "random draws of the support examples per experiment (their accuracies are averaged)")
    seed: int = opt(0, "seed of the draws")
    out: str = opt("", "folder for fewshot.json and predictions.csv (default: <run>/fewshot)")
    batch_size: int = opt(128, "batch size")
    device: str = opt("auto", "device", choices=DEVICES)


@dataclass
class EmbedExplainConfig:
    """``vislab embed explain``: which regions make two images close."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    image_a: str = opt("", "first image", cli=False)
    image_b: str = opt("", "second image", cli=False)
    method: str = opt("gradcam", "CAM method for the similarity (gradcam, gradcam++, layercam, eigencam, ...)")
    layer: str = opt("", "the backbone layer (default: its last feature layer)")
    out: str = opt("", "output PNG (default: <run>/explain/<a>_vs_<b>.png)")
    device: str = opt("auto", "device", choices=DEVICES)
