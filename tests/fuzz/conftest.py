from tests.api.conftest import make_client  # noqa: F401  (the real app, lifespan and all)
