"""Encoders: the networks that embed faces (and run at serving time), their checkpoints, weight sources and loading."""
