"""The deployment tests' fixtures: real `faceshot serve` processes."""

from tests.reliability.conftest import server_factory  # noqa: F401  (faceshot serve processes)
