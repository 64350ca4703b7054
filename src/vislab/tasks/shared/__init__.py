"""What several tasks share: input files (:mod:`.inputs`), building a registered model and checking it takes the
data's images (:mod:`.model`), ONNX / TorchScript export checked against eager (:mod:`.export`), starting from
existing weights (:mod:`.weights`) and fine-tuning plans (:mod:`.finetune`)."""
