"""The faceshot service: HTTP API, admin page, settings, database, gallery, and the `faceshot` command."""

from app.core.threads import quiet_openmp

# before anything imports torch or faiss: their OpenMP runtime reads the wait policy once (app/core/threads.py)
quiet_openmp()
