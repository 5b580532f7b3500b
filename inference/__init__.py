"""The inference service: BLIP captioning exported to ONNX, served by onnxruntime without torch."""
