"""Errors that are the user's to fix: shown as one sentence, never as a traceback."""


class UserError(Exception):
    """Bad input or an unusable environment; str(err) is a complete sentence."""


class ModelLoadError(UserError):
    """A model spec that cannot be loaded (unknown, missing file, hub unreachable)."""


class ImageLoadError(UserError):
    """An image that cannot be read safely. `kind` groups errors for batch summaries."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
