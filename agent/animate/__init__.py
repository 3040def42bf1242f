"""Animate: speech audio -> ARKit blendshape weights per video frame, with our audio-to-face model."""
