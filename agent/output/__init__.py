"""The avatar output port: what the avatar does after the face model (playout, expression and idle life, and its sinks)."""
