"""``vislab generate``'s commands on folders of images as users have them (a flat folder, class folders, the LFW
layout), the files each writes, and bad input: one clear line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

FAST = ["--progress", "off", "--no-tensorboard", "--threads", "1", "--precision", "fp32", "--sample-every", "-1"]


def write_digits(root: Path, n: int = 40, classes: bool = False, size: int = 16, rgb: bool = False) -> Path:
    """``n`` digits as PNG files: flat in ``root`` or in one folder per class."""
    from vislab.data.synthetic.digits import digits_images

    x, y = digits_images(size)
    for i in range(n):
        a = x[i, 0].numpy()
        folder = root / str(int(y[i])) if classes else root
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.stack([a] * 3, -1) if rgb else a).save(folder / f"img_{i:03d}.png")
    return root


def train(cli, tmp_path: Path, name: str, *args: str) -> Path:
    code, out, err = cli("generate", "train", *FAST, *args, "--out", str(tmp_path), "--name", name)  # args after FAST: theirs win
    assert code == 0, err
    assert "done" in out
    return tmp_path / "generate" / name


def test_autoencoder_commands_on_a_flat_folder(tmp_path, cli, one_thread):
    data = write_digits(tmp_path / "flat", 48)
    run = train(cli, tmp_path, "dae", "--model", "dae", "--data", str(data), "--epochs", "2", "--batch-size", "16", "--corrupt", "saltpepper",
                "--sample-every", "2")
    assert (run / "report.html").stat().st_size > 0 and (run / "reconstructions.png").is_file() and (run / "latents.safetensors").is_file()
    assert len(list((run / "snapshots").glob("step_*.png"))) >= 2 and (run / "progress.gif").is_file()
    s = json.loads((run / "run.json").read_text())["summary"]
    assert "final_val_noisy_psnr" in s and s["final_val_psnr"] > 0

    code, out, err = cli("generate", "reconstruct", str(run), str(data), "--n", "8")
    assert code == 0, err
    assert "48 images: PSNR" in out and (run / "reconstruct" / "reconstruct.png").is_file()
    assert len((run / "reconstruct" / "per_image.csv").read_text().splitlines()) == 49
    code, out, err = cli("generate", "denoise", str(run), "--noise", "0.2")  # default: the validation images
    assert code == 0, err
    m = json.loads((run / "denoise" / "metrics.json").read_text())
    assert m["kind"] == "saltpepper" and m["noisy_psnr"] < 40 and "->" in out
    code, out, err = cli("generate", "sample", str(run), "--n", "10")  # an AE samples from its training codes' Gaussian
    assert code == 0, err
    assert len(list((run / "samples" / "images").glob("*.png"))) == 10 and (run / "samples" / "grid.png").is_file()
    code, out, err = cli("generate", "interpolate", str(run), "--steps", "5", "--pairs", "2")
    assert code == 0, err
    assert "lerp between images" in out
    code, out, err = cli("generate", "eval", str(run))
    assert code == 0, err
    assert "reconstruction: loss" in out and "no FID" in out
    code, out, err = cli("generate", "export", str(run), "--format", "torchscript")
    assert code == 0, err
    assert "torchscript" in out and json.loads((run / "export" / "export.json").read_text())["inputs"] == ["z"]


def test_conditional_gan_on_class_folders_samples_a_class_and_exports(tmp_path, cli, one_thread):
    data = write_digits(tmp_path / "classes", 60, classes=True)
    run = train(cli, tmp_path, "cgan", "--model", "cgan", "--data", str(data), "--epochs", "2", "--batch-size", "16", "--width", "8",
                "--sample-every", "3")
    assert (run / "dynamics.png").is_file() and (run / "dynamics.csv").read_text().startswith("step,")
    code, out, err = cli("generate", "sample", str(run), "--n", "6", "--class", "3", "--seed", "1")
    assert code == 0, err
    code, out, err = cli("generate", "sample", str(run), "--n", "4", "--class", "10")
    assert code == 2 and "--class: expected a class in 0..9" in err and "Traceback" not in err
    code, out, err = cli("generate", "interpolate", str(run), "--source", "images")
    assert code == 2 and "expected an autoencoder run" in err
    code, out, err = cli("generate", "reconstruct", str(run))
    assert code == 2 and "reconstruct: expected an autoencoder run" in err
    pytest.importorskip("onnxruntime")
    code, out, err = cli("generate", "export", str(run))
    assert code == 0, err
    meta = json.loads((run / "export" / "export.json").read_text())
    assert meta["inputs"] == ["z", "y"] and meta["onnx"]["max_abs_diff"] < 1e-4


def test_diffusion_sample_writes_the_chain_and_both_samplers_run(tmp_path, cli, one_thread):
    run = train(cli, tmp_path, "ddpm", "--model", "ddpm", "--data", "digits", "--img-size", "8", "--mults", "1,2", "--width", "8",
                "--limit", "64", "--epochs", "1", "--timesteps", "50", "--batch-size", "32")
    code, out, err = cli("generate", "sample", str(run), "--n", "4", "--frames", "5")  # ddpm: all 50 steps
    assert code == 0, err
    assert (run / "samples" / "denoising.gif").is_file()
    code, out, err = cli("generate", "sample", str(run), "--n", "4", "--sampler", "ddim", "--steps", "10", "--out", str(tmp_path / "ddim"))
    assert code == 0, err
    assert len(list((tmp_path / "ddim" / "images").glob("*.png"))) == 4
    code, out, err = cli("generate", "sample", str(run), "--class", "1")
    assert code == 2 and "expected no class for an unconditional model" in err and "--model cddpm" in err


def test_mixed_channels_are_refused_unless_converted(tmp_path, cli):
    data = write_digits(tmp_path / "mixed", 20)
    write_digits(tmp_path / "rgb", 20, rgb=True)
    for p in (tmp_path / "rgb").glob("*.png"):
        p.rename(data / f"c_{p.name}")
    code, out, err = cli("generate", "train", "--model", "ae", "--data", str(data), "--epochs", "1", "--out", str(tmp_path), *FAST)
    assert code == 2 and "expected images of one channel count, got 20 gray" in err and "--channels" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    from vislab.data.generate import GenDataConfig, load_gen_data

    s = load_gen_data(GenDataConfig(data=str(data), channels="3"))
    assert s.train.channels == 3 and s.train.get(0).shape == (3, 16, 16)


@pytest.mark.parametrize("setup, args, message", [
    ("one", ["--model", "dcgan"], "expected at least 8 images to learn a distribution from, got 1"),
    ("flat", ["--model", "cgan"], "expected images of two classes or more"),
    ("flat", ["--model", "wgan_gp", "--d-norm", "batch"], "expected a critic without batch norm for wgan-gp"),
    ("flat", ["--model", "dae", "--corrupt", "none"], "expected a corruption for a denoising autoencoder"),
    ("flat", ["--model", "ddpm", "--mults", "1,x"], "--mults: expected a comma list of positive integers"),
    ("flat", ["--model", "dcgan", "--img-size", "7"], "expected an even image size"),
    ("missing", ["--model", "vae"], "not found"),
    ("flat", ["--model", "vae", "--loss", "hinge"], "--loss hinge: expected a GAN model"),
    ("flat", ["--model", "vae", "--corrupt", "mask"], "--corrupt mask: expected --model dae"),
    ("flat", ["--model", "dcgan", "--fid-extractor", "x", "--val-split", "0"], "expected a vislab classify run folder"),
])
def test_bad_training_input_is_one_line_exit_2(tmp_path, cli, setup, args, message):
    data = tmp_path / "data"
    if setup == "one":
        write_digits(data, 1)
    elif setup == "flat":
        write_digits(data, 12)
    code, out, err = cli("generate", "train", "--data", str(data), *args, "--epochs", "1", "--out", str(tmp_path), *FAST)
    assert code == 2, (out, err)
    assert message in err and err.count("\n") == 1 and "Traceback" not in err, err


def test_sampling_from_another_tasks_run_is_refused(tmp_path, cli):
    code, _, err = cli("gan2d", "train", "--epochs", "1", "--synth-count", "200", "--out", str(tmp_path), "--name", "g", "--progress", "off",
                       "--no-tensorboard", "--no-report", "--threads", "1")
    assert code == 0, err
    for command in ("sample", "interpolate", "eval", "export"):
        code, out, err = cli("generate", command, str(tmp_path / "gan2d" / "g"))
        assert code == 2 and "expected a generate checkpoint, got one of task 'gan2d'" in err, (command, err)


def test_a_diverging_gan_stops_with_the_last_good_checkpoint_and_names_the_network(tmp_path, cli):
    data = write_digits(tmp_path / "flat", 32)
    code, out, err = cli("generate", "train", "--model", "wgan", "--data", str(data), "--epochs", "3", "--lr", "1e30", "--optimizer", "sgd",
                         "--batch-size", "8", "--clip", "1e30", "--out", str(tmp_path), "--name", "nan", *FAST)
    assert code == 2, (out, err)
    assert "diverged)" in err and ("the critic D" in err or "the generator G" in err) and "expected a finite" in err, err


def test_eval_without_an_extractor_says_what_to_pass(tmp_path, cli, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no_torch_home"))
    data = write_digits(tmp_path / "flat", 16)
    run = train(cli, tmp_path, "g", "--model", "gan_mlp", "--data", str(data), "--epochs", "1", "--batch-size", "8", "--width", "16")
    code, out, err = cli("generate", "eval", str(run))
    assert code == 2 and "--extractor auto: expected Inception-v3 weights" in err and "--extractor RUN" in err


def test_lfw_layout_is_read_as_faces_of_many_people(tmp_path):
    from vislab.data.generate import GenDataConfig, load_gen_data

    root = tmp_path / "lfw_home"
    rng = np.random.default_rng(0)
    for person in ("Ada_Lovelace", "Alan_Turing", "Grace_Hopper"):
        d = root / "lfw" / person
        d.mkdir(parents=True)
        for k in range(4):
            Image.fromarray(rng.integers(0, 255, (62, 47, 3), dtype=np.uint8)).save(d / f"{person}_{k + 1:04d}.jpg")
    (root / "pairs.txt").write_text("1\t1\n")
    s = load_gen_data(GenDataConfig(data=str(root), img_size=32))
    assert len(s.train) + len(s.val) == 12 and s.train.channels == 3 and s.train.size == (32, 32)
    assert set(s.train.classes) == {"Ada_Lovelace", "Alan_Turing", "Grace_Hopper"}


def test_per_epoch_fid_picks_the_best_checkpoint_and_eval_reuses_the_extractor(tmp_path, cli, one_thread):
    data = write_digits(tmp_path / "classes", 80, classes=True)
    code, _, err = cli("classify", "train", "--data", str(data), "--epochs", "1", "--out", str(tmp_path), "--name", "clf", "--progress", "off",
                       "--no-tensorboard", "--no-report", "--threads", "1")
    assert code == 0, err
    clf = str(tmp_path / "classify" / "clf")
    run = train(cli, tmp_path, "fid", "--model", "dcgan", "--data", str(data), "--epochs", "2", "--batch-size", "16", "--width", "8",
                "--fid-extractor", clf, "--fid-samples", "40", "--loss", "hinge", "--spectral-norm")
    s = json.loads((run / "run.json").read_text())["summary"]
    assert s["best_metric"] == "val_fid"
    rows = (run / "metrics.csv").read_text().splitlines()
    assert "val_fid" in rows[0] and "val_kid" in rows[0] and len(rows) == 3
    code, out, err = cli("generate", "eval", str(run), "--n", "40")
    assert code == 0, err
    m = json.loads((run / "eval" / "metrics.json").read_text())
    assert m["extractor"] == f"classify:{clf}" and f"fid[classify:{clf}]" in out and "IS" in out and m["noise_fid"] > 0


def test_wgan_keeps_every_critic_weight_within_the_clip(tmp_path, cli, one_thread):
    from vislab.engine import checkpoint as ckpt

    data = write_digits(tmp_path / "flat", 24)
    run = train(cli, tmp_path, "w", "--model", "wgan", "--data", str(data), "--epochs", "1", "--batch-size", "8", "--width", "8", "--clip", "0.02")
    tensors, state = ckpt.load(run / "checkpoints" / "last.safetensors")
    critic = {k: v for k, v in tensors.items() if k.startswith("model.D.") and "running_" not in k and v.is_floating_point()}  # parameters
    assert critic and max(float(v.abs().max()) for v in critic.values()) <= 0.02 + 1e-7
    assert state["loss"] == "wgan" and "w_dist" in (run / "dynamics.csv").read_text().splitlines()[0]


def test_class_conditional_diffusion_with_guidance_samples_and_interpolates(tmp_path, cli, one_thread):
    run = train(cli, tmp_path, "cddpm", "--model", "cddpm", "--data", "digits", "--img-size", "8", "--mults", "1,2", "--width", "8",
                "--limit", "64", "--epochs", "1", "--timesteps", "20", "--batch-size", "32")
    code, out, err = cli("generate", "sample", str(run), "--n", "4", "--class", "2", "--guidance", "2", "--sampler", "ddim", "--steps", "5")
    assert code == 0, err
    code, out, err = cli("generate", "interpolate", str(run), "--steps", "3", "--pairs", "2")  # slerp between noises, DDIM decoding
    assert code == 0, err
    assert "slerp between noise" in out and (run / "interpolate" / "interpolation.gif").is_file()


def test_inception_weights_on_disk_are_an_extractor(tmp_path):
    import torch
    from torchvision.models import inception_v3

    from vislab.tasks.generate.features import load_extractor

    torch.manual_seed(0)
    path = tmp_path / "inception_v3_google-0cc3c7bd.pth"
    torch.save(inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict(), path)  # the layout torchvision ships
    ex = load_extractor(f"inception:{path}")
    feats, probs = ex(torch.rand(2, 1, 16, 16) * 2 - 1)  # gray, small: repeated to RGB and resized to 299 px
    assert ex.name == f"inception:{path.name}" and feats.shape == (2, 2048) and probs.shape == (2, 1000)
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    from vislab.core.errors import ConfigError

    with pytest.raises(ConfigError, match="expected torchvision Inception-v3 weights"):
        load_extractor(f"inception:{tmp_path / 'other.pth'}")
