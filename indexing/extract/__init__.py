"""The shared extractor: image loading, ResNet50 on TensorFlow, its ONNX export, and the check that an index's
extractor is the one serving it."""
