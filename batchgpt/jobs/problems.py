"""The one collector of a job's problems: where each was found, which values are known bad, the cap.

Every step of loading adds to the same `Problems`, so that `load` reports all of them at once,
each located by file, line and JSON pointer.
"""

from __future__ import annotations

from collections.abc import Mapping

from batchgpt.errors import NO_POINTER, JobError, Problem
from batchgpt.schema import JsonPath, pointer
from batchgpt.words import count

from .gaps import Gaps
from .job import Item

MAX_PROBLEMS = 1000
# Where a model is first named (models.py): file, line, JSON path (None: by the task or the
# defaults, resolved once the walk is over) and task.
ModelPlace = tuple[str, int | None, JsonPath | None, int]


class Problems:
    """Problems found in one job, the line of each JSON path of its file, and its bad values.

    A value is bad when it was left out as not JSON (a blank) or the schema refused it; the checks
    that follow skip what lies under a bad value instead of reporting it twice. Past MAX_PROBLEMS
    only a count is kept: a million bad rows cost no memory and end as one "... and N more".
    """

    def __init__(self, file: str) -> None:
        self.file = file  # the job file, or "<job>" for a job given as a dict
        self.lines: dict[JsonPath, int] = {}
        self.blanks: list[JsonPath] = []
        self.bad: list[JsonPath] = []  # the blanks, and the paths the schema refused
        self.count = 0
        self._kept: list[Problem] = []
        self.gaps = Gaps()  # fields items lack, one problem per cause
        self.lacked = 0  # fields items lacked, each item's each: an item with one is not sound
        self.models: dict[str, ModelPlace] = {}  # each model the items name, where it is first named
        self.warnings: list[Problem] = []  # what is worth a word but sends nothing wrong (models.py)

    def fresh(self) -> Problems:
        """None of these problems, but where the job's keys are written and which values are bad:
        what another process's walk of part of the job starts from (dryfork.py)."""
        other = Problems(self.file)
        other.locate(self.lines, [])
        other.blanks, other.bad = list(self.blanks), list(self.bad)
        return other

    def locate(self, lines: Mapping[JsonPath, int], blanks: list[JsonPath]) -> None:
        """Where the job file's keys and values are written, and which values it left out."""
        self.lines.update(lines)
        self.blanks.extend(blanks)
        self.bad.extend(blanks)

    def add(
        self, message: str, *, line: int | None = None, path: JsonPath | None = None, file: str | None = None
    ) -> None:
        """A problem in `file` (the job file unless named); without a path it is about the file as a whole."""
        self.count += 1
        if len(self._kept) < MAX_PROBLEMS:
            where = NO_POINTER if path is None else pointer(path)
            self._kept.append(Problem(file or self.file, line, message, where))

    def lacks(self, item: Item, where: JsonPath, name: str, line: int | None) -> None:
        """The item lacks field `name`, which its task's option `where` names: counted in the one
        problem of that cause (gaps.py)."""
        self.lacked += 1
        if self.gaps.add(item, where, name, line):
            self.count += 1

    def merge(self, other: Problems) -> None:
        """Add what a walk of another part of the same file found."""
        self._kept.extend(other._kept[: max(0, MAX_PROBLEMS - len(self._kept))])
        self.count += other.count - self.gaps.merge(other.gaps)
        for model, place in other.models.items():
            self.models.setdefault(model, place)

    def at(self, path: JsonPath, message: str) -> None:
        """A problem in the job file, at the line its path is written on."""
        self.add(message, line=self.line_of(path), path=path)

    def refused(self, path: JsonPath, message: str) -> None:
        """A value the schema refuses: reported, and marked bad for the checks that follow."""
        self.bad.append(path)
        self.at(path, message)

    def line_of(self, path: JsonPath) -> int | None:
        """The line of `path`, else of the nearest enclosing key that has one."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def blanked(self, path: JsonPath) -> bool:
        """Whether `path` lies at or under a value left out as not JSON."""
        return any(path[: len(blank)] == blank for blank in self.blanks)

    def bad_under(self, prefix: JsonPath) -> list[JsonPath]:
        """The bad paths at or under `prefix`."""
        return [p for p in self.bad if p[: len(prefix)] == prefix]

    @property
    def full(self) -> bool:
        """More problems than are reported: looking for further ones is wasted."""
        return self.count > MAX_PROBLEMS

    def listed(self) -> list[Problem]:
        """The problems found, in line order, the ones past the cap counted in a last line."""
        # in line order: the job file's first, then each data file's (items_from) in turn
        grouped = self.gaps.problems(self.file, self.lines, self.line_of)
        kept = sorted(self._kept + grouped, key=lambda p: (p.file != self.file, p.file, p.line or 0))
        more = self.count - len(kept)
        if not more:
            return kept
        return [*kept, Problem(kept[0].file, None, f"... and {count(more, 'more problem')}", NO_POINTER)]

    def raise_any(self) -> None:
        """Raise JobError listing the problems, if there are any."""
        if self.count:
            raise JobError(self.listed())


def reason(exc: BaseException) -> str:
    """Why reading failed, in the words of the OS where it has them."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
