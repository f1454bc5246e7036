"""One router per resource: people, recognition, system."""
