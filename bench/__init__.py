"""Benchmarks: scripts that print figures (see bench/README.md). Run from the checkout: `python -m bench.<name>`."""
