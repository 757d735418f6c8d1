"""Runners: the parts that talk to Docker (python-on-whales, testcontainers), imported lazily."""
