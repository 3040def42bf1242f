"""Render: drawing the avatar (camera and lights, the lean and PBR renderers), in a worker process per call or a thread."""
