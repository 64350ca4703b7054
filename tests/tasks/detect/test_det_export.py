"""ONNX export with post-processing in the graph: onnxruntime selects the same detections as vislab's eager
inference path (model(x) with per-class NMS), for batch sizes other than the one traced."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch

from vislab.models.detect.yolo import yolo_tiny
from vislab.tasks.detect.export import EndToEnd


def test_onnx_graph_with_nms_equals_eager_inference(tmp_path, one_thread):
    torch.manual_seed(0)
    model = yolo_tiny(num_classes=3, width=8, score_thresh=0.2, nms_iou=0.5, max_det=1000).eval()
    with torch.no_grad():  # spread the scores so NMS has real work: some boxes above, most below the threshold
        model.cls.bias.normal_(-1.0, 1.0)
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    graph = EndToEnd(model, mean, std, score_thresh=0.2).eval()
    torch.onnx.export(graph, (torch.rand(2, 3, 48, 48),), str(tmp_path / "m.onnx"), input_names=["images"], output_names=["detections"],
                      opset_version=17, dynamic_axes={"images": {0: "batch"}, "detections": {0: "n"}}, dynamo=False)
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    x = torch.rand(3, 3, 48, 48)
    got = sess.run(None, {"images": x.numpy()})[0]
    with torch.no_grad():
        eager = model((x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1))
    total = 0
    for i, d in enumerate(eager):
        mine = got[got[:, 0] == i]
        ref = np.concatenate([d["boxes"].numpy(), d["scores"].numpy()[:, None], d["labels"].numpy()[:, None]], 1)
        assert len(mine) == len(ref), (i, len(mine), len(ref))
        key = lambda a: a[np.lexsort(np.round(a[:, [3, 2, 1, 0, 5]], 2).T)]  # noqa: E731
        assert np.abs(key(mine[:, 1:]) - key(ref)).max() < 1e-3
        total += len(ref)
    assert 5 < total < 3 * 1000  # something was kept and something was suppressed or thresholded


def test_torchvision_detector_exports_with_its_postprocessing(tmp_path, one_thread):
    import warnings

    from vislab.models.registry import MODELS
    from vislab.tasks.detect.export import TorchvisionEndToEnd, compare_detections

    torch.manual_seed(0)
    det = MODELS.build("fasterrcnn_tiny", num_classes=2, img_size=64, score_thresh=0.0).eval()
    graph = TorchvisionEndToEnd(det, [0.5] * 3, [0.25] * 3, score_thresh=0.0).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, (torch.rand(1, 3, 64, 64),), str(tmp_path / "f.onnx"), input_names=["images"], output_names=["detections"],
                          opset_version=17, dynamic_axes={"detections": {0: "n"}}, dynamo=False)
    sess = ort.InferenceSession(str(tmp_path / "f.onnx"), providers=["CPUExecutionProvider"])
    x = torch.rand(1, 3, 64, 64)
    got = sess.run(None, {"images": x.numpy()})[0]
    with torch.no_grad():
        ref = det((x - 0.5) / 0.25)[0]
    assert len(ref["boxes"]) > 0 and got.shape == (len(ref["boxes"]), 7)
    table = np.concatenate([np.zeros((len(got), 1)), ref["boxes"].numpy(), ref["scores"].numpy()[:, None], ref["labels"].numpy()[:, None]], 1)
    assert compare_detections(got, table.astype(np.float32)) < 1e-3
