"""Video understanding's configs: training (data, model, train, run) and each command's."""

from __future__ import annotations

from dataclasses import dataclass, field

from vislab.core.config import opt
from vislab.data.base import ImageDataConfig
from vislab.engine.config import RunConfig, TrainConfig

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
FLOWS = ("auto", "farneback", "raft", "gt")


@dataclass
class VideoDataConfig(ImageDataConfig):
    """Which videos, how clips are cut from them, and where decoded frames and flow are cached."""

    data: str = opt("moving", "dataset: moving, moving-lr, moving-all, moving-bounce (generated moving shapes; bounce: they turn back once, labelled per frame), a folder of class folders "
                              "(videos or frame folders; or train/ val/ test/ of them), a KTH root, a UCF-101 root")
    img_size: int = opt(0, "frames resized to this square size (0: 32 for generated data, 112 for files)")
    channels: int = opt(0, "1 (gray) or 3 (RGB) channels (0: 1 for KTH, else 3)")
    clip_len: int = opt(8, "frames per clip")
    frame_stride: int = opt(1, "take every n-th frame within a clip")
    sampling: str = opt("dense", "training clips: dense (clip-len consecutive frames at a random start), uniform (clip-len frames "
                                 "spread over the whole video), tsn (one random frame per segment)", choices=("dense", "uniform", "tsn"))
    eval_clips: int = opt(3, "clips per video at evaluation (spread evenly; video accuracy averages their scores)")
    pad: str = opt("error", "a video shorter than one clip: error, loop (wrap around) or repeat (its last frame)", choices=("error", "loop", "repeat"))
    fold: int = opt(1, "UCF-101 split files: which of the three folds")
    test_split: float = opt(0.2, "fraction held out for testing when the dataset has no test split (by subject / group where known)")
    n_videos: int = opt(480, "generated data: clips in all (train + val + test)")
    augment: str = opt("none", "training augmentation, the same for every frame of a clip: none, light (random translation); "
                              "no flips: they would swap left and right", choices=("none", "light"))
    flow: str = opt("auto", "optical flow for two-stream models: farneback (vislab.ops, CPU), raft (torchvision RAFT from "
                            "--raft-weights), gt (generated data's true flow); auto: farneback", choices=FLOWS)
    raft_weights: str = opt("", "a torchvision RAFT-small state dict (.pth / .safetensors) for --flow raft (never downloaded)")
    flow_scale: float = opt(4.0, "flow is divided by this many pixels before it enters a network")
    cache: str = opt("auto", "folder caching decoded frames and flow as uint8 / float16 (auto: $VISLAB_CACHE or ~/.cache/vislab/video; "
                             "none: decode every epoch)")
    workers: int = opt(0, "decoding threads (0: in the training loop)")


@dataclass
class VideoModelConfig:
    """Which network to train."""

    model: str = opt("c3d", "c3d, r3d_18, r2plus1d_18, mc3_18, framewise, cnn_gru, cnn_lstm, cnn_rnn, two_stream (`vislab models list --task video`)")
    backbone: str = opt("small_cnn", "2-D backbone of framewise / CNN+RNN / two-stream models: any registry classifier")
    width: int = opt(0, "channels of the first stage of c3d and of a small_cnn backbone (0: c3d 16 for frames up to 64 px, else 32; small_cnn 16)")
    hidden: int = opt(128, "CNN+RNN: hidden units of the recurrent layer")
    num_layers: int = opt(1, "CNN+RNN: recurrent layers")
    bidirectional: bool = opt(False, "CNN+RNN: a bidirectional recurrent layer")
    many_to_many: bool = opt(False, "CNN+RNN: a label for every frame (many-to-many) instead of one per clip")
    fusion: str = opt("late", "two-stream: late (average the two streams' scores) or mid (join their features)", choices=("late", "mid"))
    grid: int = opt(0, "framewise / CNN+RNN: frame features pooled to grid x grid cells, keeping where things are (0: 4 for frames up to 64 px, else 2)")
    pool: str = opt("mean", "framewise: temporal pooling of frame features", choices=("mean", "max"))
    drop_rate: float = opt(0.0, "dropout before the classifier")
    weights: str = opt("", "start from these weights: a vislab video run or checkpoint, or a .pth / .safetensors state dict "
                           "(e.g. torchvision's Kinetics-400 r3d_18 file); the classifier is replaced for the new classes")


def _train_defaults() -> TrainConfig:
    # AdamW 2e-3 with one-cycle: what trains the small 3-D and recurrent nets fastest on the generated clips
    return TrainConfig(epochs=8, optimizer="adamw", lr=2e-3, weight_decay=0.01)


@dataclass
class VideoConfig:
    """``vislab video train``: everything a video-classification run is made of."""

    data: VideoDataConfig = field(default_factory=lambda: VideoDataConfig(batch_size=32, val_split=0.15))
    model: VideoModelConfig = field(default_factory=VideoModelConfig)
    train: TrainConfig = field(default_factory=_train_defaults)
    run: RunConfig = field(default_factory=RunConfig)


@dataclass
class VideoEvalConfig:
    """``vislab video eval``: clip and video accuracy, per-class P/R/F1, confusion matrix."""

    checkpoint: str = opt("", "checkpoint file or run folder (uses checkpoints/best.safetensors)", cli=False)
    data: str = opt("", "dataset (default: the one the run was trained on)")
    split: str = opt("test", "split to evaluate", choices=("train", "val", "test"))
    eval_clips: int = opt(0, "clips per video (0: the run's)")
    batch_size: int = opt(32, "clips per forward pass")
    out: str = opt("", "folder for metrics.json, per_class.csv, confusion_matrix.png (default: <run>/eval-<split>)")
    device: str = opt("auto", "device", choices=DEVICES)
    precision: str = opt("auto", "numeric precision", choices=PRECISIONS)


@dataclass
class VideoPredictConfig:
    """``vislab video predict``: labels per clip and per frame of videos."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    inputs: list[str] = opt([], "video files, frame folders, or folders / globs of them", cli=False)
    stride: int = opt(0, "frames between the starts of consecutive clips (0: half a clip)")
    topk: int = opt(3, "classes reported per clip")
    out: str = opt("", "output folder (default: <run>/predict)")
    annotate: bool = opt(True, "write each video with its per-frame label drawn on it (annotated mp4) and a timeline PNG")
    pad: str = opt("", "a video shorter than one clip: error, loop or repeat (default: the run's)")
    batch_size: int = opt(16, "clips per forward pass")
    device: str = opt("auto", "device", choices=DEVICES)
    precision: str = opt("auto", "numeric precision", choices=PRECISIONS)


@dataclass
class VideoExplainConfig:
    """``vislab video explain``: spatio-temporal Grad-CAM of a clip, as a GIF / mp4 beside the frames."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    inputs: list[str] = opt([], "video files or frame folders", cli=False)
    target_class: str = opt("", "class to explain, by name or index (default: each clip's prediction)")
    layer: str = opt("", "module whose activations the CAM weighs (default: the model's last spatio-temporal block)")
    max_videos: int = opt(4, "explain at most this many videos")
    out: str = opt("", "output folder (default: <run>/explain)")
    fps: float = opt(4.0, "frames per second of the written GIF / mp4")
    device: str = opt("auto", "device", choices=DEVICES)
