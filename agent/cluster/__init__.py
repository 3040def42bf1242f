"""Calls spread over a Ray cluster: a front places each call on a node (`front.py`), each node hosts calls (`node.py`), fine-tunes run as Ray tasks (`jobs.py`)."""
