.PHONY: setup serve test test-fast docs benchmark
setup:
	bash scripts/setup.sh

serve: setup
	.venv/bin/avatar-agent serve

test:
	WITH_TEST_TOOLS=1 bash scripts/setup.sh
	.venv/bin/python -m pytest -ra

# The developer's loop: everything that needs no Chromium, no Ray and no training, and is not marked slow.
# `make test` (what CI runs) is the whole suite.
test-fast:
	WITH_TEST_TOOLS=1 bash scripts/setup.sh
	.venv/bin/python -m pytest -ra -m "not browser and not cluster and not finetune and not slow"

# docs/configuration.md from the config models (tests/test_docs.py checks it is up to date)
docs:
	.venv/bin/avatar-agent config --reference > docs/configuration.md

benchmark: setup
	.venv/bin/avatar-agent benchmark
