"""Inference backends behind ``inference.DepthBackend``: ONNX Runtime, TensorRT, PyTorch.

Each module imports its library (onnxruntime, tensorrt + cuda-python, torch) only when a backend
is constructed, so importing this package costs nothing on a machine that lacks some of them.
"""
