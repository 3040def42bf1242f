"""Animate: speech audio -> ARKit blendshape weights per video frame, plus idle life."""
