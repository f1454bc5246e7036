"""The face pipeline (detection, alignment, encoders, checkpoints), evaluation, and few-shot training; no web code."""
