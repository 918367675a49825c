"""Typed errors: the CLI prints one line and a hint for these, a traceback only with --debug."""


class TamisError(Exception):
    """Base class; `hint` says what the user can do about it."""

    exit_code = 1

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


class ConfigError(TamisError):
    """A config value is unknown, of the wrong type or out of range; raised before any work."""

    exit_code = 2


class InputError(TamisError):
    """Input cannot be read at all (missing path, unknown format), or bad records passed max_error_fraction."""

    exit_code = 3


class IntegrityError(TamisError):
    """An artifact fails verification: checksum mismatch, newer format, other embedding model."""

    exit_code = 4


class ResourceError(TamisError):
    """A needed resource is missing: a model file, an optional package, a device."""

    exit_code = 5
