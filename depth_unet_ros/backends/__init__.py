"""Inference backends behind ``inference.DepthBackend``: ONNX Runtime, TensorRT, PyTorch.

Each module imports its library (onnxruntime, tensorrt + cuda-python, torch) only when a backend
is constructed, so importing this package costs nothing on a machine that lacks some of them.
"""

# The one list of backend names (node parameter, launch argument, every command's --backend);
# "auto" takes TensorRT for ONNX where it and a GPU are present, else ONNX Runtime.
BACKEND_CHOICES = ("auto", "onnxruntime", "tensorrt", "torch")
