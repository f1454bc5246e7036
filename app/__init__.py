"""The faceshot service: HTTP API, admin page, settings, database, gallery, and the `faceshot` command."""
