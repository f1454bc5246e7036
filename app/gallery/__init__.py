"""The gallery: people, collections, photos, the FAISS index and its sync, thresholds, enrollment checks, transfer."""
