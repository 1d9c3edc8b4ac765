"""The worked examples of docs/adding_an_environment.md and docs/adding_an_algorithm.md.

They live in the test suite so that tests/test_guides.py runs them and checks that the guides
show exactly this code."""
