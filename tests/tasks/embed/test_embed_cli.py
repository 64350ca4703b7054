"""`vislab embed` end to end on identity folders on disk: train (report), eval (also with a pairs file), embed, index
+ search (equal to raw FAISS), verify, cluster, fewshot, explain -- and the bad inputs, each one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vislab.data.synthetic.identities import generate_identities


def write_identities(root: Path, identities: int, per: int, seed: int = 0, offset: int = 0) -> Path:
    d = generate_identities(identities, per, 32, seed)
    for k, (img, lab) in enumerate(zip(d["images"], d["labels"], strict=True)):
        folder = root / f"person{int(lab) + offset:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / f"{k:04d}.png")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import torch

    from vislab.cli.main import main

    tmp = tmp_path_factory.mktemp("embed")
    data = write_identities(tmp / "faces", 24, 10)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        main(["embed", "train", "--data", str(data), "--epochs", "3", "--width", "8", "--embed-dim", "32", "--batch-size", "32", "--loss", "triplet",
              "--out", str(tmp / "runs"), "--name", "run", "--progress", "off", "--no-tensorboard", "--test-split", "0.25"])
    except SystemExit as e:
        assert not e.code, e
    finally:
        torch.set_num_threads(n)
    return tmp, tmp / "runs" / "embed" / "run"


def test_train_writes_the_report(trained):
    _, run = trained
    page = (run / "report.html").read_text()
    for h in ["Learning curves", "ROC of verification", "Distances of matched and mismatched pairs", "Embeddings in 2-D", "Nearest neighbours",
              "Environment", "Config"]:
        assert f"<h2>{h}" in page, h
    for name in ["roc.png", "distances.png", "map.png", "neighbours.png", "curves.png"]:
        assert (run / name).stat().st_size > 1000, name
    s = json.loads((run / "run.json").read_text())["summary"]
    assert {"test_p_at_1", "test_map_at_r", "test_verif_acc", "threshold"} <= set(s)


def test_eval_on_the_split_and_on_a_pairs_file(trained, cli, tmp_path):
    tmp, run = trained
    code, out, err = cli("embed", "eval", str(run))
    assert code == 0, err
    m = json.loads((run / "eval-test" / "metrics.json").read_text())
    assert m["identities"] == 6 and {"p_at_1", "r_at_5", "map_at_r", "verif_acc", "roc_auc", "eer", "tar_at_far"} <= set(m)
    files = sorted((tmp / "faces").rglob("*.png"))
    rows = ["path_a,path_b,same"] + [f"{files[i]},{files[i + 1]},{int(files[i].parent == files[i + 1].parent)}" for i in range(0, 80, 2)]
    rows += [f"{files[i]},{files[-1 - i]},0" for i in range(20)]
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    code, out, err = cli("embed", "eval", str(run), "--pairs", str(tmp_path / "pairs.csv"), "--out", str(tmp_path / "ev"))
    assert code == 0, err
    p = json.loads((tmp_path / "ev" / "metrics.json").read_text())["pairs"]
    assert p["n"] == 60 and p["folds"] == 10 and 0 <= p["verif_acc"] <= 1 and "10-fold  accuracy" in out
    assert (tmp_path / "ev" / "pairs_roc.png").exists()


def test_embed_index_search_equal_raw_faiss(trained, cli, tmp_path):
    import faiss

    tmp, run = trained
    code, out, err = cli("embed", "embed", str(run), str(tmp / "faces"), "--out", str(tmp_path / "emb.npy"))
    assert code == 0, err
    emb = np.load(tmp_path / "emb.npy")
    items = (tmp_path / "emb.items.csv").read_text().splitlines()
    assert emb.shape == (240, 32) and len(items) == 241 and items[1].endswith(",person000")
    code, out, err = cli("embed", "index", str(run), str(tmp_path / "emb.npy"), "--out", str(tmp_path / "idx"))
    assert code == 0, err
    queries = sorted((tmp / "faces").rglob("*.png"))[::40]
    code, out, err = cli("embed", "search", str(tmp_path / "idx"), *map(str, queries), "-k", "5")
    assert code == 0, err
    res = json.loads((tmp_path / "idx" / "search" / "search.json").read_text())
    raw = faiss.IndexFlatIP(32)
    raw.add(emb)  # the embeddings are L2-normalised (cosine): inner product = 1 - distance
    sims, ids = raw.search(emb[[int(str(q.stem)) for q in queries]], 5)
    paths = [r.split(",")[0] for r in items[1:]]
    for r, row_ids, row_sims in zip(res, ids, sims, strict=True):
        assert [n["path"] for n in r["neighbours"]] == [paths[i] for i in row_ids]
        np.testing.assert_allclose([n["distance"] for n in r["neighbours"]], 1 - row_sims, atol=1e-5)
        assert r["neighbours"][0]["path"] == r["query"]  # each query is in the gallery: itself first, distance 0
    assert (tmp_path / "idx" / "search" / "neighbours.png").stat().st_size > 1000


def test_verify_cluster_fewshot_explain(trained, cli, tmp_path):
    tmp, run = trained
    files = sorted((tmp / "faces" / "person000").glob("*.png"))
    other = sorted((tmp / "faces" / "person001").glob("*.png"))
    code, out, err = cli("embed", "verify", str(run), str(files[0]), str(files[1]))
    assert code == 0 and "distance" in out and "threshold" in out, err
    code, out, err = cli("embed", "verify", str(run), str(files[0]), str(other[0]), "--threshold", "1e-9")
    assert code == 0 and out.startswith("different identities"), out
    new = write_identities(tmp_path / "new", 4, 6, seed=5)  # identities nobody trained on
    code, out, err = cli("embed", "cluster", str(run), str(new), "--out", str(tmp_path / "cl"))
    assert code == 0 and "4 clusters" in out and "NMI" in out, err
    assert len(list((tmp_path / "cl" / "clusters").iterdir())) == 4 and (tmp_path / "cl" / "map.png").exists()
    support, query = tmp_path / "support", tmp_path / "query"
    for d in sorted(new.iterdir()):
        imgs = sorted(d.glob("*.png"))
        for sub, part in ((support, imgs[:3]), (query, imgs[3:])):
            (sub / d.name).mkdir(parents=True, exist_ok=True)
            for f in part:
                (sub / d.name / f.name).write_bytes(f.read_bytes())
    code, out, err = cli("embed", "fewshot", str(run), "--support", str(support), "--query", str(query), "--shots", "1,3", "--out", str(tmp_path / "fs"))
    assert code == 0 and "1-shot: accuracy" in out and "3-shot: accuracy" in out, err
    fs = json.loads((tmp_path / "fs" / "fewshot.json").read_text())
    assert fs["classes"] == 4 and fs["queries"] == 12 and fs["shots"]["3-shot"]["acc"] > 0.25  # better than chance
    code, out, err = cli("embed", "explain", str(run), str(files[0]), str(other[0]), "--out", str(tmp_path / "ex.png"))
    assert code == 0 and (tmp_path / "ex.png").stat().st_size > 1000, err


def _one_line(code, err, *parts):
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    for p in parts:
        assert p in err, err


def test_bad_data_is_one_line(tmp_path, cli):
    data = write_identities(tmp_path / "d", 4, 4)
    for f in sorted((data / "person002").glob("*.png"))[1:]:
        f.unlink()
    code, _, err = cli("embed", "train", "--data", str(data), "--out", str(tmp_path / "r"), "--test-split", "0", "--val-split", "0")
    _one_line(code, err, "expected at least 2 images of every training identity", "'person002'", "--min-images 2")
    one = write_identities(tmp_path / "one", 1, 4)
    code, _, err = cli("embed", "train", "--data", str(one), "--out", str(tmp_path / "r"))
    _one_line(code, err, "expected at least 2 identities, got 1")
    code, _, err = cli("embed", "train", "--batch-size", "30", "--out", str(tmp_path / "r"))
    _one_line(code, err, "--batch-size: expected a multiple of --m-per-class 4, got 30")


def test_bad_queries_indexes_and_pairs_are_one_line(trained, cli, tmp_path):
    tmp, run = trained
    faces = tmp / "faces"
    code, _, err = cli("embed", "index", str(run), str(faces / "person000"), "--out", str(tmp_path / "idx"))
    assert code == 0, err
    q = str(sorted((faces / "person001").glob("*.png"))[0])
    code, _, err = cli("embed", "search", str(tmp_path / "idx"), q, "-k", "11")
    _one_line(code, err, "-k: expected at most 10", "got 11")
    other = tmp_path / "other"  # another model: same architecture, its own weights
    code, _, err = cli("embed", "train", "--data", str(faces), "--epochs", "1", "--width", "8", "--embed-dim", "32", "--batch-size", "32",
                       "--seed", "7", "--out", str(other), "--name", "o", "--progress", "off", "--no-tensorboard", "--no-report")
    assert code == 0, err
    code, _, err = cli("embed", "search", str(tmp_path / "idx"), q, "--checkpoint", str(other / "embed" / "o"))
    _one_line(code, err, "expected embeddings of model 'run:", "got model 'o:")
    index_file = tmp_path / "idx" / "index.faiss"
    index_file.write_bytes(index_file.read_bytes()[:-50])
    code, _, err = cli("embed", "search", str(tmp_path / "idx"), q)
    _one_line(code, err, "truncated")
    (tmp_path / "pairs.csv").write_text(f"path_a,path_b,same\n{q},{faces / 'person001' / 'missing.png'},1\n")
    code, _, err = cli("embed", "eval", str(run), "--pairs", str(tmp_path / "pairs.csv"))
    _one_line(code, err, "missing.png", "(missing)")


def test_text_to_image_search_with_a_local_clip_model(tmp_path, cli):
    """The zero-shot path with a tiny randomly initialised CLIP of open_clip's architecture (its weights as a local
    safetensors file): neighbours equal the cosine ranking of open_clip's own text and image embeddings."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    cfg = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "vislab-test-clip.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "cfg")
    torch.manual_seed(0)
    model = open_clip.create_model("vislab-test-clip", pretrained=None).eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / "w.safetensors")
    photos = write_identities(tmp_path / "photos", 3, 3)
    code, out, err = cli("embed", "index", "clip:vislab-test-clip", str(photos))
    _one_line(code, err, "--weights: expected the local weights file of clip:vislab-test-clip")
    code, out, err = cli("embed", "index", "clip:vislab-test-clip", str(photos), "--weights", str(tmp_path / "w.safetensors"), "--out", str(tmp_path / "idx"))
    assert code == 0, err
    code, out, err = cli("embed", "search", str(tmp_path / "idx"), "a photo of a red shape", "--text", "-k", "4")
    assert code == 0, err
    got = json.loads((tmp_path / "idx" / "search" / "search.json").read_text())[0]
    from vislab.tasks.embed.clip import load_clip

    emb, _, _ = load_clip("vislab-test-clip", str(tmp_path / "w.safetensors"), torch.device("cpu"))
    files = sorted(photos.rglob("*.png"))
    from vislab.core.io import read_image

    with torch.no_grad():
        img = torch.nn.functional.normalize(model.encode_image(emb.preprocess([read_image(f) for f in files])), dim=1)
        txt = torch.nn.functional.normalize(model.encode_text(open_clip.get_tokenizer("vislab-test-clip")(["a photo of a red shape"])), dim=1)
    order = torch.argsort(1 - (img @ txt.T)[:, 0])[:4]
    assert got["query"] == "a photo of a red shape" and [n["path"] for n in got["neighbours"]] == [str(files[i]) for i in order]
    code, out, err = cli("embed", "search", str(tmp_path / "idx"), "x", "--text", "--checkpoint", "runs/none")
    assert code == 2


def test_lfw_layout_written_by_vislab_is_evaluated_with_its_pairs(trained, cli, tmp_path):
    _, run = trained
    code, out, err = cli("data", "generate-identities", str(tmp_path / "lfw_like"), "--layout", "lfw", "--identities", "8", "--per", "4",
                         "--pairs", "3", "--seed", "4")
    assert code == 0 and "10 folds x 6 pairs" in out, err
    assert (tmp_path / "lfw_like" / "lfw" / "Person_000" / "Person_000_0004.jpg").is_file()
    code, out, err = cli("embed", "eval", str(run), "--data", str(tmp_path / "lfw_like"))
    assert code == 0 and "pairs " in out and "60 pairs, 10-fold" in out, (out, err)
    m = json.loads((run / "eval-lfw_like-test" / "metrics.json").read_text())  # beside the run's own eval, not over it
    assert m["pairs"]["folds"] == 10 and 0 <= m["pairs"]["verif_acc"] <= 1


def test_an_index_takes_new_items_and_loses_deleted_ones_without_a_rebuild(trained, cli, tmp_path):
    tmp, run = trained
    faces, idx = tmp / "faces", str(tmp_path / "idx")
    code, out, err = cli("embed", "index", str(run), str(faces / "person000"), "--out", idx)
    assert code == 0 and "index of 10 items" in out, err
    code, out, err = cli("embed", "index", str(run), str(faces / "person001"), "--out", idx, "--update", "add")
    assert code == 0 and "index of 20 items" in out and "added 10" in out, err
    gone = sorted((faces / "person000").glob("*.png"))[:3]
    code, out, err = cli("embed", "index", str(run), *map(str, gone), "--out", idx, "--update", "remove")
    assert code == 0 and "index of 17 items" in out and "removed 3" in out, err
    code, out, err = cli("embed", "search", idx, str(gone[0]), "-k", "17")
    paths = {n["path"] for n in json.loads((tmp_path / "idx" / "search" / "search.json").read_text())[0]["neighbours"]}
    assert code == 0 and len(paths) == 17 and not paths & {str(g) for g in gone}, err
    code, _, err = cli("embed", "index", str(run), str(tmp_path / "nothing.png"), "--out", idx, "--update", "remove")
    _one_line(code, err, "expected items with the paths of INPUTS to remove, got none of 1 path(s)")


def test_refused_combinations_and_a_timm_backbone(tmp_path, cli):
    code, _, err = cli("embed", "train", "--augment", "standard,mixup", "--out", str(tmp_path))
    _one_line(code, err, "--augment: expected operations that keep one identity per image (no mixup / cutmix), got 'standard,mixup'")
    code, _, err = cli("embed", "train", "--distance", "euclidean", "--out", str(tmp_path))
    _one_line(code, err, "--distance euclidean: expected a loss that shapes raw distances", "got --loss arcface")
    import torch

    from vislab.tasks.embed import EmbedModelConfig, build_model

    model, args = build_model(EmbedModelConfig(model="timm:resnet10t", embed_dim=16), num_classes=4, in_chans=3, size=(32, 32))
    assert model.embed(torch.zeros(2, 3, 32, 32)).shape == (2, 16) and args["backbone"] == "timm:resnet10t"


def test_cluster_links_never_touch_the_originals(trained, cli, tmp_path):
    tmp, run = trained
    for part in ("a", "b"):  # two folders with files of the same names: person000/0000.png ...
        for src in sorted((tmp / "faces" / "person000").glob("*.png"))[:3] + sorted((tmp / "faces" / "person001").glob("*.png"))[:3]:
            dst = tmp_path / part / src.parent.name / src.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(src.read_bytes())
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.png")}
    code, out, err = cli("embed", "cluster", str(run), str(tmp_path / "a"), str(tmp_path / "b"), "--clusters", "2", "--out", str(tmp_path / "cl"))
    assert code == 0, err
    assert len(list((tmp_path / "cl" / "clusters").rglob("*.png"))) == 12
    assert all(p.read_bytes() == b for p, b in before.items())
