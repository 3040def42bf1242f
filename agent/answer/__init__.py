"""Answer: transcript -> FAQ reply, or a hand-off to a person when unsure."""
