"""The HTTP API under /api/v1: its routes, their dependencies, and the checks made before a body is read."""
