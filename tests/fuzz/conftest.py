"""The fuzz tests' fixtures: the real app in-process, and real `faceshot serve` processes."""

from tests.api.conftest import make_client  # noqa: F401  (the real app, lifespan and all)
from tests.reliability.conftest import server_factory  # noqa: F401  (faceshot serve processes)
