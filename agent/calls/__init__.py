"""Where calls run: the contract the HTTP front uses, the calls of this process, and the operator jobs."""
