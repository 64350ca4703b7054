"""``vislab models list | show``."""

from __future__ import annotations


def test_models_list_filters_by_pattern_and_task(cli):
    code, out, _ = cli("models", "list", "resnet*,vgg16", "--task", "classify")
    assert code == 0
    assert "resnet18" in out and "vgg16" in out and "densenet121" not in out and "11.69M" in out


def test_models_show_table_text_and_picture(cli, tmp_path):
    code, out, err = cli("models", "show", "resnet18", "--stem", "cifar", "--depth", "1", "--png", str(tmp_path / "s.png"), "--out", str(tmp_path / "s.txt"))
    assert code == 0, err
    assert "layer4" in out and "(1, 512, 4, 4)" in out and "555.93M MACs" in out
    assert (tmp_path / "s.png").stat().st_size > 1000 and "layer4" in (tmp_path / "s.txt").read_text()


def test_models_show_bad_inputs_one_line(cli):
    for args, pattern in [
        (("models", "show", "resnt18"), "did you mean 'resnet18'"),
        (("models", "show", "alexnet", "--input-size", "32"), "expected H, W >= 63"),
        (("models", "show", "resnet18", "--input-size", "a,b"), "expected S or H,W"),
    ]:
        code, _, err = cli(*args)
        assert code == 2 and pattern in err.strip().splitlines()[-1] and "Traceback" not in err
