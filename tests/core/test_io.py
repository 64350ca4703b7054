import numpy as np
import pytest
from PIL import Image

from vislab.core.errors import DataError
from vislab.core.io import atomic_path, atomic_write_text, read_image


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    p = tmp_path / "f.txt"
    atomic_write_text(p, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(p) as tmp:
            tmp.write_text("half-writ")
            raise RuntimeError("killed")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["f.txt"]  # no temp file left behind


def test_read_image_modes(tmp_path):
    rgba = np.zeros((5, 7, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 0  # fully transparent -> white background
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    a = read_image(tmp_path / "a.png")
    assert a.shape == (5, 7, 3) and (a == 255).all()
    g16 = (np.arange(35, dtype=np.uint16).reshape(5, 7) * 1800)
    Image.fromarray(g16).save(tmp_path / "b.png")
    b = read_image(tmp_path / "b.png", "L")
    assert b.shape == (5, 7, 1) and b.max() == round(34 * 1800 / 65535 * 255)
    Image.fromarray(np.full((4, 4), 3, np.uint8)).convert("P").save(tmp_path / "c.png")
    assert read_image(tmp_path / "c.png").shape == (4, 4, 3)


def test_read_image_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="nope.png.*not"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(DataError, match="empty.png.*empty file"):
        read_image(tmp_path / "empty.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataError, match="bad.png.*corrupt"):
        read_image(tmp_path / "bad.png")
