"""The one exception a loader raises for a file it refuses."""


class LoadError(ValueError):
    """A user-facing reason why a file cannot be ingested (no traceback is shown)."""
