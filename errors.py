"""The pack's one error type (pure: importable without ComfyUI)."""


class SNRToolkitError(ValueError):
    """A user-facing error: says what is wrong and what to do instead."""
