"""Exceptions Setlist raises for bad input; each message names what is wrong."""


class SetlistError(Exception):
    """Base class for errors a user can act on."""


class ConfigError(SetlistError):
    """A config file, key or value is wrong."""


class IngestError(SetlistError):
    """Raw input for a day cannot be read (missing, empty or unreadable file)."""


class LakeError(SetlistError):
    """A Delta table is missing or does not have the expected shape."""


class GateRefused(SetlistError):
    """A candidate model was not published because it is worse than the champion."""


class OpeError(SetlistError):
    """Logs cannot support an off-policy estimate (no exploration, no logs in the range)."""
