.PHONY: setup serve test benchmark
setup:
	bash scripts/setup.sh

serve: setup
	.venv/bin/avatar-agent serve

test:
	WITH_TEST_TOOLS=1 bash scripts/setup.sh
	.venv/bin/python -m pytest -ra

benchmark: setup
	.venv/bin/avatar-agent benchmark
