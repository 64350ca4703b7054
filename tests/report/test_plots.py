"""Learning curves: COCO's -1 sentinel is not plotted; legends sit beside the axes."""

from __future__ import annotations

import numpy as np

import vislab.report.plots as P


def test_curves_leave_out_cocos_undefined_values(tmp_path, monkeypatch):
    hist = [{"epoch": e, "train_loss": 1.0 / e, "val_map": 0.1 * e, "val_map_large": -1.0, "val_map_small": [-1.0, 0.2][e - 1]}
            for e in (1, 2)]
    drawn, legends = {}, []
    real_save = P._save

    def capture(fig, path):
        for ax in fig.axes:
            drawn.update({line.get_label(): np.asarray(line.get_ydata(), float) for line in ax.lines})
            if ax.get_legend() is not None:
                legends.append(ax.get_legend().get_bbox_to_anchor().transformed(ax.transAxes.inverted()).x0)
        return real_save(fig, path)

    monkeypatch.setattr(P, "_save", capture)
    P.plot_curves(hist, tmp_path / "c.png")
    assert set(drawn) == {"train_loss", "val_map", "val_map_small"}  # never defined: not drawn
    assert np.isnan(drawn["val_map_small"][0]) and drawn["val_map_small"][1] == 0.2  # -1 left out, not drawn at -1
    assert legends and all(x0 > 1.0 for x0 in legends)  # right of the plotting area
    assert (tmp_path / "c.png").stat().st_size > 1000
