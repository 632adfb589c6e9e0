"""Exceptions raised by usagenorm. The Rust core raises these through one mapping."""

from __future__ import annotations


class NormalizeError(ValueError):
    """A record (or document) could not be normalized.

    Attributes:
        source: the file path, or ``<memory>``.
        index: the record's position in its source (``source_index``).
        line: the 1-based line for NDJSON input, else ``None``.
        provider: the detected or forced format, when known.
        kind: what kind of problem it is: ``missing`` (a required field), ``wrong_type``,
            ``out_of_range``, ``invalid`` (a value that is not acceptable), ``malformed_json``
            (text that is not JSON, invalid UTF-8, a broken gzip stream) or ``page`` (the
            page's shared part is unusable).
        path: the JSON path of the offending field, e.g. ``$.records[3].createdAt``.
        reason: what was wrong and what was expected.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        index: int | None = None,
        line: int | None = None,
        provider: str | None = None,
        kind: str | None = None,
        path: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.source = source
        self.index = index
        self.line = line
        self.provider = provider
        self.kind = kind
        self.path = path
        self.reason = reason


class ColumnError(ValueError):
    """An input frame lacks a column usagenorm needs, or has it with the wrong type."""


class RateCardError(ValueError):
    """A rate card row is unusable, or two rows match a usage row equally well.

    Attributes:
        row: the card's data row, counted from 1 (CSV line ``row + 1``); 0 for the card as a whole.
        usage_row: for two equally good rates, the usage frame's row, counted from 0
            (``df.row(usage_row)``); the message names its source, record and record_id.
    """

    def __init__(self, message: str, *, row: int | None = None, usage_row: int | None = None) -> None:
        super().__init__(message)
        self.row = row
        self.usage_row = usage_row


class FormatError(ValueError):
    """A format file (or dict) that cannot be compiled.

    Attributes:
        origin: the file (or ``<dict>``) it came from.
        key: the key that is wrong (with its line, for a file), or empty when the text itself
            is not valid TOML.
    """

    def __init__(self, message: str, *, origin: str | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.origin = origin
        self.key = key
