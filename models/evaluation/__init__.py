"""Evaluation: the open-set protocol, gallery sweeps and the embeddings of a dataset."""
