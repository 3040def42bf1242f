"""Audio-to-face: speech audio -> 52 ARKit blendshape weights (lip-sync plus expression).

The three steps, one sub-package each:
  data/   build a labelled corpus offline (voices with phone timings -> visemes -> ARKit curves)
  train/  the streaming network, its training loop and the ONNX export
  runtime streaming ONNX inference used by the agent (numpy + onnxruntime, no torch)
and evaluate.py with its baselines measures all of them on held-out voices and real speakers.
"""
