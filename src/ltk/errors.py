"""ltk's own error types. The CLI turns them into a clean message and an exit status."""

from __future__ import annotations

from dataclasses import dataclass


class LtkError(Exception):
    """An error a user can act on. ``exit_code`` 2 means bad usage or invalid input."""

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(LtkError):
    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One validation problem: where it is, what was found, and how to fix it."""

    file: str
    key: str
    message: str
    value: object = None
    fix: str = ""

    def render(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        text = f"{where}: {self.message}"
        if self.value is not None:
            shown = repr(self.value)
            if len(shown) > 120:
                shown = shown[:117] + "..."
            text += f" (got {shown})"
        if self.fix:
            text += f"\n    fix: {self.fix}"
        return text


class ValidationError(UsageError):
    """Every problem found in one or more files, reported together."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        n = len(self.problems)
        header = f"{n} problem{'s' if n != 1 else ''} found:"
        super().__init__("\n".join([header, *("  - " + p.render() for p in self.problems)]))
