"""Step 2: the streaming network, its training loop and the ONNX export."""
