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


def onnx_session(model_path: Path | str, threads: int = 1, device: str = "auto"):
    """An onnxruntime session on the CPU or GPU (`onnx_providers`), with `threads` threads of its own and quiet logs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(model_path), sess_options=options, providers=onnx_providers(device))


def use_models_offline(threads: int) -> None:
    """The process's model settings, chosen once by each entry point (the CLI's jobs, a cluster node, the tests):
    the hub libraries never try the network (they read this when first imported), and torch uses `threads`."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    torch.set_num_threads(threads)


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


def fresh_processes():
    """The multiprocessing context for worker pools: processes forked from a clean server, never from this one.
    A fork of a process with model, codec or encoder threads can hang in the child on a lock one of them held
    (a CI run hung so, in a video converter's destructor run by the child)."""
    import multiprocessing

    return multiprocessing.get_context("forkserver")
