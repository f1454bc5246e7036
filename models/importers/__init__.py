"""Weights users already have, turned into faceshot encoder checkpoints (one module per source format)."""
