"""The one error type for user errors.

Library code raises :class:`GanProbeError` with a message a user can act on
(a bad path, an empty folder, a corrupt file, missing data or weights). The CLI
catches it once and prints one red line; anything else is a bug and keeps its
traceback.

A bad argument names the library's parameter, not a command-line flag: raise
``GanProbeError("lr must be positive (got -1)", param="lr")``. A Python user reads
``lr must be ...``; the CLI, which names that parameter ``--lr``, prints
``--lr must be ...`` (see :meth:`GanProbeError.for_cli`).

A message that tells the user to set another (boolean) parameter writes it as ``name=True`` and
lists it in ``mentions``: ``GanProbeError("out runs/x already holds a run; continue it with
resume=True or ...", param="out", mentions=("resume",))`` reads ``... with --resume or ...`` on
the command line.
"""

from __future__ import annotations


class GanProbeError(Exception):
    """A problem the user can fix; its message is shown as one line.

    ``param``: the library parameter the message is about; the message starts with its name.
    ``mentions``: other boolean parameters the message asks for, each written ``name=True``.
    """

    def __init__(self, message: str = "", *, param: str | None = None, mentions: tuple[str, ...] = ()):
        super().__init__(message)
        self.param = param
        self.mentions = tuple(mentions)

    def for_cli(self, flags: dict[str, str] | None = None) -> str:
        """The message with its leading parameter name replaced by the command-line flag:
        ``flags[param]`` when given, else ``--`` + the name with dashes (``labels_per_class`` ->
        ``--labels-per-class``); each of ``mentions`` written ``name=True`` becomes its flag too."""
        text = str(self)
        for name in self.mentions:
            text = text.replace(f"{name}=True", _flag(name, flags))
        if not self.param or not text.startswith(self.param):
            return text
        return _flag(self.param, flags) + text[len(self.param):]


def _flag(name: str, flags: dict[str, str] | None) -> str:
    return (flags or {}).get(name) or "--" + name.replace("_", "-")
