"""The fast style network (``vislab style train``): on a held-out content image its style (Gram) loss is within a
stated factor of Gatys et al.'s optimisation of that image and well below the unstyled image's (the speed of one
forward pass against the optimisation is docs/style.md's, not a timed test); ``apply`` on images and a video; two
styles in one network; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vislab.core.config import from_dict
from vislab.tasks import style

pytestmark = pytest.mark.usefixtures("one_thread")
QUIET = {"progress": "off", "tensorboard": False, "report": False, "threads": 1, "precision": "fp32", "sample_every": -1, "features": "random"}
FACTOR = 4.0  # the fast network's style loss may be this many times the optimisation's (measured: about 2x)


def _style_images(root: Path) -> list[Path]:
    import skimage.data as sk

    root.mkdir(parents=True, exist_ok=True)
    a, b = root / "hubble.png", root / "ihc.png"
    Image.fromarray(sk.hubble_deep_field()[:300, :300]).resize((64, 64)).save(a)
    Image.fromarray(sk.immunohistochemistry()).resize((64, 64)).save(b)
    return [a, b]


def test_fast_network_restyles_close_to_the_optimisation(tmp_path):
    from vislab.tasks.shared.features import gram, load_feature_net, style_loss
    from vislab.tasks.shared.model import load_for_inference
    from vislab.tasks.style import gatys
    from vislab.tasks.style.task import read_image

    s_path = _style_images(tmp_path)[0]
    run = style.train(from_dict(style.StyleConfig, {**QUIET, "data": "skimage", "style": [str(s_path)], "img_size": 32, "width": 16, "blocks": 2,
                                                    "epochs": 1, "patches": 160, "batch_size": 8, "lr": 2e-3, "out": str(tmp_path), "name": "fast"}))
    model, _, _, _ = load_for_inference(str(run), "style", "cpu", "fp32")
    import skimage.data as sk

    content = torch.from_numpy(np.array(Image.fromarray(sk.astronaut()).resize((48, 48)))).permute(2, 0, 1)[None].float() / 127.5 - 1  # held out
    net = load_feature_net("random")
    st = read_image(s_path)
    with torch.no_grad():
        target = {k: gram(v) for k, v in net(st, net.default_style).items()}

        def loss(x: torch.Tensor) -> float:
            return float(style_loss(net(x, net.default_style), target))

        fast = model(content).clamp(-1, 1)
    opt = gatys.transfer(content, st, net, steps=60, progress="off")
    assert loss(content) > 2 * loss(opt.image)  # the optimisation restyles (the bar it sets means something)
    assert loss(fast) <= FACTOR * loss(opt.image), (loss(fast), loss(opt.image), loss(content))
    assert loss(fast) < 0.7 * loss(content)  # measured 0.44 against 0.79


def test_two_styles_apply_to_images_and_video(tmp_path, cli):
    import cv2

    a, b = _style_images(tmp_path)
    run = style.train(from_dict(style.StyleConfig, {**QUIET, "data": "skimage", "style": [str(a), str(b)], "img_size": 32, "width": 4, "blocks": 1,
                                                    "epochs": 1, "patches": 4, "batch_size": 8, "out": str(tmp_path), "name": "two", "report": True}))
    assert (run / "examples.png").is_file() and json.loads((run / "run.json").read_text())["summary"]["final_val_style"] > 0
    video = tmp_path / "clip.mp4"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (40, 32))
    for i in range(4):
        w.write(np.full((32, 40, 3), 40 * i, np.uint8))
    w.release()
    code, out, err = cli("style", "apply", str(run), str(a), str(video))
    assert code == 0, err
    names = sorted(p.name for p in (run / "apply").iterdir())
    assert names == ["clip_style0.mp4", "clip_style1.mp4", "hubble_style0.png", "hubble_style1.png"], names
    cap = cv2.VideoCapture(str(run / "apply" / "clip_style1.mp4"))
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert frames == 4
    import av

    with av.open(str(run / "apply" / "clip_style1.mp4")) as c:  # H.264 (browsers play it) at the input's 5 fps
        s = c.streams.video[0]
        assert (s.codec_context.name, float(s.average_rate)) == ("h264", 5.0)
    code, out, err = cli("style", "apply", str(run), str(a), "--mix", "0.5,0.5", "--out", str(tmp_path / "mix"))
    assert code == 0, err
    assert (tmp_path / "mix" / "hubble_mix.png").is_file()
    code, out, err = cli("style", "apply", str(run), str(a), "--mix", "1,2,3")
    assert code == 2 and "--mix: expected 2 non-negative weights" in err
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video\n" * 20)
    code, out, err = cli("style", "apply", str(run), str(bad), "--out", str(tmp_path / "bad"))
    assert code == 2 and err.strip().splitlines()[-1].startswith(f"error: video {bad}: expected a readable video"), err
    assert not list((tmp_path / "bad").glob("*.mp4"))  # nothing half-written


def test_bad_style_inputs(tmp_path, cli):
    a, _ = _style_images(tmp_path)
    code, out, err = cli("style", "train", "--data", "skimage", "--out", str(tmp_path))
    assert code == 2 and err.strip().splitlines()[-1].startswith("error: --style: expected one or more style images"), err
    code, out, err = cli("style", "train", "--data", "skimage", "--style", str(tmp_path / "none.png"), "--out", str(tmp_path))
    assert code == 2 and "not found" in err
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (12, 12), (200, 30, 30)).save(tiny)
    code, out, err = cli("style", "transfer", str(tiny), str(a), "--size", "0", "--steps", "2", "--features", "random")
    assert code == 2 and "expected at least 32 x 32 pixels for layer relu5_1" in err and len(err.strip().splitlines()) == 1
