"""Speak: reply text -> sentences -> speech audio, one sentence at a time."""
