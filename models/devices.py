"""The one place that decides CPU or GPU, for each runtime the project uses.

`device` is the config's choice: 'auto' takes a GPU when the runtime can use
one, 'cuda' insists (and says why it cannot), 'cpu' never uses one.
"""
from __future__ import annotations

from pathlib import Path


def onnx_providers(device: str = "auto") -> list[str]:
    """onnxruntime execution providers: CUDA first when onnxruntime-gpu sees a GPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        raise RuntimeError(f"device is 'cuda' but onnxruntime offers only {available}; install onnxruntime-gpu and a CUDA driver")
    return ["CPUExecutionProvider"]


def ctranslate2_device(device: str = "auto") -> str:
    """'cuda' or 'cpu' for CTranslate2 (Whisper)."""
    if device != "auto":
        return device
    try:
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    except Exception:  # a CPU-only build, or no driver
        return "cpu"


def gl_platform(backend: str = "auto") -> str:
    """OpenGL for rendering: EGL on an NVIDIA GPU, OSMesa (software) otherwise."""
    if backend != "auto":
        return backend
    return "egl" if Path("/dev/nvidia0").exists() else "osmesa"
