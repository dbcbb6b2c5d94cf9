"""The one exception type users see, and the warnings that travel with a result.

Every message names where the problem is (file, line, layer, field) and, where
there is one, what to do about it. The command line prints `str(error)` on one
line and exits without a traceback.
"""

from __future__ import annotations

from typing import NamedTuple


class AtrousError(Exception):
    """A problem with the user's input or request (not a bug in caffe_atrous).

    exit_code: 1 for a conversion error, 2 for a usage error.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 column: int | None = None, layer: str | None = None, exit_code: int = 1):
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.layer = layer
        self.exit_code = exit_code
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            loc = self.file
            if self.line is not None:
                loc += f":{self.line}"
                if self.column is not None:
                    loc += f":{self.column}"
            where.append(loc)
        if self.layer is not None:
            where.append(f"layer '{self.layer}'")
        return ": ".join(where + [self.message])

    def located(self, file: str | None = None, line: int | None = None,
                layer: str | None = None) -> "AtrousError":
        """The same error (same class) with file, line and layer filled in where missing."""
        out = AtrousError.__new__(type(self))
        AtrousError.__init__(out, self.message, file=self.file or file,
                             line=self.line if self.line is not None else line,
                             column=self.column, layer=self.layer or layer,
                             exit_code=self.exit_code)
        return out


class UsageError(AtrousError):
    """A command-line request that cannot be honoured (exit code 2)."""

    def __init__(self, message: str, **kw):
        kw.setdefault("exit_code", 2)
        super().__init__(message, **kw)


class ConversionWarning(NamedTuple):
    """Something the conversion did or could not do exactly, tied to a layer."""

    layer: str | None
    message: str

    def __str__(self) -> str:
        return f"layer '{self.layer}': {self.message}" if self.layer else self.message
