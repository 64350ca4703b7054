"""What several tasks share: input files (:mod:`.inputs`), building a registered model and checking it takes the
data's images (:mod:`.model`), ONNX / TorchScript export checked against eager (:mod:`.export`), starting from
existing weights (:mod:`.weights`), fine-tuning plans (:mod:`.finetune`) and the feature networks of perceptual and style
losses (:mod:`.features`: VGG from a file, a random multi-scale net, a vislab classify run)."""
