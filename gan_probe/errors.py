"""The one error type for user errors.

Library code raises :class:`GanProbeError` with a message a user can act on
(a bad path, an empty folder, a corrupt file, missing data or weights). The CLI
catches it once and prints one red line; anything else is a bug and keeps its
traceback.
"""


class GanProbeError(Exception):
    """A problem the user can fix; its message is shown as one line."""
