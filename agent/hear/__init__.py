"""Hear: browser audio -> voice activity -> end of turn -> transcript."""
