"""Video understanding: ``vislab video train | eval | predict | frames | flow | explain | export | lr-find``.

Python API: ``train(cfg)`` (a :class:`VideoConfig`), ``evaluate``, ``predict``, ``run_frames``, ``run_flow``, ``explain``,
``export`` (each with its config); ``SPEC`` is the task's :class:`~vislab.tasks.base.TaskSpec`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vislab.tasks import base
from vislab.tasks.shared.export import ExportConfig, export_lines
from vislab.tasks.video.config import VideoConfig, VideoEvalConfig, VideoExplainConfig, VideoModelConfig, VideoPredictConfig
from vislab.tasks.video.explain import explain
from vislab.tasks.video.flowviz import FlowConfig, run_flow, show_flow
from vislab.tasks.video.frames import FramesConfig, run_frames, show_frames
from vislab.tasks.video.infer import evaluate, export, predict
from vislab.tasks.video.task import VideoTask, setup, validate


def train(cfg: VideoConfig, callbacks: list | None = None, folder: str | None = None) -> Path:
    """Train a video classifier; returns the run folder (see :func:`vislab.tasks.base.train`)."""
    return base.train(SPEC, cfg, callbacks, folder)


def _summary(s: dict[str, Any]) -> str:
    which = "test" if "test_video_acc" in s else "val"
    v, c = s.get(f"{which}_video_acc"), s.get(f"{which}_acc")
    if v is None:
        return "done"
    return f"done: {which} video accuracy {v:.4f} (clips {c:.4f}) in {s.get('total_seconds', 0):.1f}s"


def _show_eval(cfg: VideoEvalConfig, r: dict[str, Any]) -> list[str]:
    return [f"{cfg.split}: {r['videos']} videos ({r['clips']} clips)  video acc {r['video_acc']:.4f}  clip acc {r['acc']:.4f}  "
            f"loss {r['loss']:.4f}  clip macro-F1 {r['macro_f1']:.4f}",
            f"written: {r['out']}/metrics.json, per_class.csv, confusion_matrix.png, confusion_matrix_clips.png"]


def _show_predict(cfg: VideoPredictConfig, r: dict[str, Any]) -> list[str]:
    lines = [f"{row['path']}: {row['label']} ({row['prob']:.3f}), {len(row['clips'])} clip(s), {row['frames']} frames" for row in r["rows"][:10]]
    if len(r["rows"]) > 10:
        lines.append(f"... {len(r['rows']) - 10} more")
    lines.append(f"written: {r['out']}/predictions.json, clips.csv" + (", <video>_annotated.mp4, <video>_timeline.png" if cfg.annotate else ""))
    return lines


def _show_explain(cfg: VideoExplainConfig, r: dict[str, Any]) -> list[str]:
    return [*(f"  {row['path']}: {row['class']} ({row['prob']:.2f}), most attended frame {row['peak_frame']}" for row in r["rows"]),
            f"written: {len(r['paths'])} file(s) in {r['out']}"]


SPEC = base.TaskSpec(
    name="video",
    config=VideoConfig,
    setup=setup,
    validate=validate,
    help="Video understanding: action recognition (3-D CNNs, CNN+RNN, two-stream), frame-by-frame models, optical flow.",
    train_help="""Train a video classifier; results go to runs/video/<name>/.

    \b
    Examples:
      vislab video train                                       # a small C3D on generated moving shapes
      vislab video train --data moving --model cnn_gru --bidirectional
      vislab video train --data moving --model two_stream      # RGB + Farneback flow, late fusion
      vislab video train --data ./KTH --model r2plus1d_18 --clip-len 16 --frame-stride 2
      vislab video train --data ./UCF101 --fold 1 --model r3d_18 --weights r3d_18-kinetics.pth
      vislab video train --resume runs/video/exp               # continue a killed run
    """,
    monitor="val_video_acc",
    summary=_summary,
    report_files=("report.html", "curves.png", "confusion_matrix.png", "samples.gif", "checkpoints/best.safetensors"),
    modes=(
        base.Mode("eval", VideoEvalConfig, evaluate, _show_eval,
                  "Evaluate CHECKPOINT on a split: clip and video accuracy (clip scores averaged per video), per-class P/R/F1, confusion matrices."),
        base.Mode("predict", VideoPredictConfig, predict, _show_predict,
                  "Label INPUTS (videos, frame folders) per clip and per frame with CHECKPOINT; writes JSON / CSV, a timeline PNG and an annotated mp4."),
        base.Mode("frames", FramesConfig, run_frames, show_frames, """Run a classify or detect CHECKPOINT frame by frame on VIDEO: annotated mp4, per-frame CSV / JSON, tracks.

    \b
    Examples:
      vislab video frames runs/classify/exp clip.mp4             # label each frame, and the video from its frames
      vislab video frames runs/detect/exp street.mp4 --track      # boxes with track ids
    """),
        base.Mode("flow", FlowConfig, run_flow, show_flow, """Optical flow of VIDEO: colour-coded dense flow (Farneback) or sparse Lucas-Kanade tracks, as mp4 and CSV.

    \b
    Examples:
      vislab video flow clip.mp4
      vislab video flow clip.mp4 --method lk --gif
    """),
        base.Mode("explain", VideoExplainConfig, explain, _show_explain,
                  "Spatio-temporal Grad-CAM of CHECKPOINT on INPUTS: where and when the model looks, as GIF and mp4."),
        base.Mode("export", ExportConfig, export, export_lines, "Export CHECKPOINT (a clip model) to ONNX and/or TorchScript, each checked against the eager model."),
    ),
)

__all__ = ["SPEC", "ExportConfig", "FlowConfig", "FramesConfig", "VideoConfig", "VideoEvalConfig", "VideoExplainConfig", "VideoModelConfig",
           "VideoPredictConfig", "VideoTask", "evaluate", "explain", "export", "predict", "run_flow", "run_frames", "train"]
