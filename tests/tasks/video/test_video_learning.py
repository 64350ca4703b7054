"""Why time matters, measured: on generated moving shapes whose single frames carry no direction (the generator makes
each class's positions the mirror image of its opposite's), the models that see time -- a 3-D CNN, a CNN + GRU, a
two-stream network on Farneback flow -- each classify the direction of held-out clips (>= 0.9 video accuracy), and
the frame-wise model with temporal pooling, which is blind to frame order, stays near chance on left vs right."""

from __future__ import annotations

import json

import pytest

from vislab.core.config import from_dict
from vislab.tasks import video

QUIET = {"progress": "off", "tensorboard": False, "report": False, "threads": 1, "precision": "fp32", "cache": "none"}


def _train(tmp_path, name: str, **kw) -> dict:
    cfg = from_dict(video.VideoConfig, {**QUIET, "out": str(tmp_path), "name": name, **kw})
    run = video.train(cfg)
    return json.loads((run / "run.json").read_text())["summary"]


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize(("model", "extra"), [
    ("c3d", {"width": 8}),
    ("cnn_gru", {"width": 8, "hidden": 32, "bidirectional": True, "drop_rate": 0.2, "n_videos": 400, "epochs": 6}),
    ("two_stream", {"width": 8}),
])
def test_temporal_models_tell_the_direction_of_motion(tmp_path, model, extra):
    s = _train(tmp_path, model, model=model, data="moving", **{"n_videos": 240, "epochs": 4, "batch_size": 16, **extra})
    assert s["test_video_acc"] >= 0.9, s
    assert s["test_acc"] >= 0.85, s


@pytest.mark.usefixtures("one_thread")
def test_framewise_pooling_cannot_see_left_from_right(tmp_path):
    data = {"data": "moving-lr", "n_videos": 240, "epochs": 4, "batch_size": 16, "width": 8}
    blind = _train(tmp_path, "framewise", model="framewise", **data)
    seeing = _train(tmp_path, "c3d", model="c3d", **data)  # the same clips, with time
    assert blind["test_video_acc"] <= 0.65, blind  # chance is 0.5: as a set, a left clip's frames are a right clip's
    assert seeing["test_video_acc"] >= 0.9, seeing


@pytest.mark.usefixtures("one_thread")
def test_many_to_many_gru_labels_each_frame_of_a_bouncing_object(tmp_path):
    """Objects turn back once at a random frame; the per-frame labels say which way they move. The best a clip-level
    model can do is one label per clip (the majority direction: 0.65 of the frames); the many-to-many GRU does better."""
    import numpy as np

    from vislab.data.video.synthetic import make_moving

    d = make_moving(1000, "moving-bounce", frames=8, seed=0)
    one_label = float(np.mean([np.bincount(f).max() / len(f) for f in d.frame_labels]))  # 0.65
    s = _train(tmp_path, "m2m", model="cnn_gru", many_to_many=True, bidirectional=True, drop_rate=0.2, data="moving-bounce",
               n_videos=1000, epochs=4, batch_size=16, width=8, hidden=32, lr=0.005)
    assert s["test_frame_acc"] >= max(0.78, one_label + 0.1), (s, one_label)  # measured 0.83
