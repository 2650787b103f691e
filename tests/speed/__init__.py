"""Speed benchmarks (pytest-benchmark); run them with the command in the README, "Test"."""
