"""The one error an importer raises: a body it cannot read, with where and why."""

from __future__ import annotations


class ImportFormatError(ValueError):
    """A response body that cannot be imported.

    The message names the source (file), the record inside it when there is one (`instances[3]`)
    and the problem: `runs.json: instances[3]: unknown status 'done'`.
    """

    def __init__(self, source: str, problem: str, record: str | None = None) -> None:
        self.source = source
        self.record = record
        self.problem = problem
        where = f"{source}: {record}" if record else source
        super().__init__(f"{where}: {problem}")

    def __reduce__(self) -> tuple[type[ImportFormatError], tuple[str, str, str | None]]:
        return (type(self), (self.source, self.problem, self.record))
