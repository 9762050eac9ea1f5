"""A JSON array read a piece at a time, in bounded memory, with what reading it whole gives.

A results file of a million elements is a 300 MB JSON array; ``json.loads`` of it took 2.25 GB
and 18 s. Here the file is scanned a read at a time by numpy: which bytes are inside strings (a
``"`` not escaped by an odd run of backslashes opens or closes one), and how deep the brackets
outside them are. A ``,`` at depth 1 ends an element; the bracket back to depth 0 ends the array.
Each read's whole elements make a :class:`Piece`, which :mod:`.batches` turns into rows: as JSON
Lines for Arrow (:func:`element_lines`, one element a line) or, where Arrow is not trusted with
it, by ``json`` (:func:`element_values`).

The errors are those of ``json.loads`` on the whole text, the same reason at the same line and
column. The scanner and the parser agree on every byte of valid JSON, so a piece parsed by
``json`` behind ``[`` (or ``[0,``: the parser's state after a comma) fails where, and as, the whole
text fails; only an empty element (``,,``, ``, ]``) needs its real next separator to be judged.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np

from ..errors import InputError
from .reading import TOO_DEEP, invalid_json, json_value

READ_SIZE = 1 << 22
"""Bytes scanned at a time: a piece holds the whole elements of one read (and the end of the one
the read before left open), so this and the longest element bound what a piece holds."""

BOM = b"\xef\xbb\xbf"
JSON_SPACE = b" \t\n\r"
SKIP_LIMIT = 64
"""Whitespace bytes before or after an element :func:`element_lines` steps over; past that the
piece goes to ``json`` (correct, only slower)."""

_OPEN, _CLOSE, _COMMA = 1, 2, 3
_CODES = np.zeros(256, np.int8)
_CODES[[ord("["), ord("{")]] = _OPEN
_CODES[[ord("]"), ord("}")]] = _CLOSE
_CODES[ord(",")] = _COMMA
_STEPS = np.array([0, 1, -1, 0], np.int64)  # depth change by code
_SPACE = np.zeros(256, bool)
_SPACE[list(JSON_SPACE)] = True


@dataclass
class _State:
    """Where a read leaves the scan: in a string or not, after how many backslashes, how deep."""

    inside: bool = False
    backslashes: int = 0
    depth: int = 1  # the array's own bracket


@dataclass(frozen=True)
class Piece:
    """Whole elements of the array, each followed by what ends it (``,`` or the array's closing
    bracket); ``end`` says which ends the last ("eof": the file ended first, the array unclosed)."""

    data: bytes
    offset: int  # in the file, of data[0]
    ends: np.ndarray = field(repr=False)  # where in data each element's ``,`` or the closing bracket is
    first: bool  # data starts right after the array's ``[``
    end: Literal["comma", "closer", "eof"]


def array_start(path: Path) -> int | None:
    """Where the array's ``[`` is, when the file's text (past one BOM and any whitespace, as the
    whole-file reader strips them) starts with one; None otherwise (read whole)."""
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
    skip = len(BOM) if head.startswith(BOM) else 0
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head[skip:])
    except UnicodeDecodeError:
        return None  # the whole-file reader names the byte
    stripped = text.lstrip()
    if not stripped.startswith("["):
        return None
    return skip + len(text[: len(text) - len(stripped)].encode())


def array_pieces(path: Path, start: int, read_size: int | None = None) -> Iterator[Piece]:
    """The array opening at ``start``, piece by piece; raises what ``json.loads`` of the whole text
    raises for an array never closed or for more than whitespace after it."""
    state = _State()
    carry: list[bytes] = []  # the open element's start, from earlier reads
    carried = 0
    offset = position = start + 1  # the next piece's start and the next read's, in the file
    first = True
    with path.open("rb") as handle:
        handle.seek(position)
        while chunk := handle.read(read_size or READ_SIZE):
            ends, closer = _scan(chunk, state)
            if closer >= 0:
                ends = np.append(ends, closer)
            cut = int(ends[-1]) + 1 if len(ends) else 0
            if cut:
                data = b"".join([*carry, chunk[:cut]])
                end: Literal["comma", "closer"] = "closer" if closer >= 0 else "comma"
                yield Piece(data, offset, ends + carried, first, end)
                first, offset, carry, carried = False, offset + len(data), [], 0
            if closer >= 0:
                _check_tail(handle, path, start, position + closer + 1)
                return
            carry.append(chunk[cut:])
            carried += len(chunk) - cut
            position += len(chunk)
    element_values(Piece(b"".join(carry), offset, np.zeros(0, np.int64), first, "eof"), path, start)
    raise InputError("invalid JSON (the array is never closed)", source=str(path))  # json raised above


def _scan(chunk: bytes, state: _State) -> tuple[np.ndarray, int]:
    """Where in one read an element ends (a ``,`` at depth 1, outside strings) and where the array
    closes (-1: not in this read); ``state`` moves on to the read's end."""
    b = np.frombuffer(chunk, np.uint8)
    inside = in_strings(chunk, state.inside, state.backslashes)
    marks = np.flatnonzero(_CODES[b])
    marks = marks[inside[marks] == 0]
    kinds = _CODES[b[marks]]
    steps = _STEPS[kinds]
    before = state.depth + np.cumsum(steps) - steps  # the depth each mark meets
    closes = np.flatnonzero((kinds == _CLOSE) & (before == 1))
    closer = int(marks[closes[0]]) if len(closes) else -1
    ends = marks[(kinds == _COMMA) & (before == 1)]
    if closer >= 0:
        return ends[ends < closer], closer
    if len(marks):
        state.depth = int(before[-1] + steps[-1])
    state.inside = bool(inside[-1])
    trailing = len(chunk) - len(chunk.rstrip(b"\\"))
    state.backslashes = trailing + (state.backslashes if trailing == len(chunk) else 0)
    return ends, -1


def in_strings(data: bytes, inside: bool = False, backslashes: int = 0) -> np.ndarray:
    """1 for each byte of ``data`` inside a JSON string (its opening quote too, not its closing
    one), starting ``inside`` one or not, after ``backslashes`` in a row from before."""
    b = np.frombuffer(data, np.uint8)
    quotes = b == ord('"')
    if backslashes or b"\\" in data:  # ``in``: memchr, far cheaper than a numpy pass
        _drop_escaped(b, quotes, backslashes)
    state = np.bitwise_xor.accumulate(quotes.view(np.uint8))
    return state ^ np.uint8(1) if inside else state


def _drop_escaped(b: np.ndarray, quotes: np.ndarray, backslashes: int) -> None:
    """Unmark each quote escaped by an odd run of backslashes before it (runs are short: the
    loop turns once per backslash of the longest)."""
    if len(b) and quotes[0] and backslashes % 2:
        quotes[0] = False
    escaped = np.flatnonzero(quotes[1:] & (b[:-1] == ord("\\"))) + 1
    at = escaped - 1  # each one's run, walked back to its first backslash
    runs = np.zeros(len(escaped), np.int64)
    live = np.ones(len(escaped), bool)
    while True:
        live &= at >= 0
        live[live] = b[at[live]] == ord("\\")
        if not live.any():
            break
        runs += live
        at -= live
    runs += np.where(at < 0, backslashes, 0)  # a run from the read's first byte goes on before it
    quotes[escaped[runs % 2 == 1]] = False


def element_lines(piece: Piece) -> bytes | None:
    """The piece's elements as JSON Lines, one element a line (its whitespace line ends made
    spaces, the whitespace around it dropped), or None unless every element is an object from
    ``{`` to ``}`` and no string holds a raw line end (``json`` refuses one; a line would split)."""
    b = np.frombuffer(piece.data, np.uint8)
    if piece.end == "eof" or not len(piece.ends) or piece.end == "closer" and b[piece.ends[-1]] != ord("]"):
        return None  # unclosed, or closed by a ``}``: json names what is wrong
    inside = in_strings(piece.data).view(bool)
    breaks = (b == 10) | (b == 13)
    if (breaks & inside).any():
        return None
    space = _SPACE[b] & ~inside
    ends = piece.ends
    first = _skip(space, np.concatenate(([0], ends[:-1] + 1)), 1)
    last = _skip(space, ends - 1, -1)
    if first is None or last is None or ends[0] == 0:
        return None
    if not ((b[first] == ord("{")).all() and (b[last] == ord("}")).all() and (last > first).all()):
        return None
    gaps = np.zeros(len(b) + 1, np.int8)  # +1 where a run of bytes to drop starts, -1 after it
    gaps[last + 1] = 1
    gaps[first[1:]] = -1
    if first[0] > 0:
        gaps[0], gaps[first[0]] = 1, -1
    keep = np.cumsum(gaps[:-1], dtype=np.int8) == 0
    keep[ends] = True
    lines = b.copy()
    lines[breaks] = ord(" ")
    lines[ends] = ord("\n")
    return lines[keep].tobytes()


def _skip(space: np.ndarray, at: np.ndarray, step: int) -> np.ndarray | None:
    """From each position, the first byte (going ``step``) that is not whitespace outside strings."""
    at = at.copy()
    for _ in range(SKIP_LIMIT):
        moving = space[at]
        if not moving.any():
            return at
        at[moving] += step
    return None


def element_values(piece: Piece, path: Path, start: int) -> list[Any]:
    """The piece's elements parsed by ``json`` (:func:`.reading.json_value`); its error, had the
    whole text been parsed, as one line naming the file's line and column."""
    text = piece.data.decode("utf-8")
    head = "[" if piece.first else "[0,"  # the parser's state at the piece's start
    body = text
    if piece.end == "comma" and _last_filled(piece):
        body = text[:-1] + "]"  # the element before the comma parses as before any closing bracket
    elif piece.end == "eof":
        body = text.rstrip()  # the whole-file reader strips the text's end
    try:
        values = json_value(head + body)
    except json.JSONDecodeError as error:
        at = max(error.pos - len(head), 0)
        line, column = line_and_column(path, start, piece.offset + len(text[:at].encode()))
        raise invalid_json(error.msg, line, column, str(path)) from None
    except RecursionError:
        raise InputError(TOO_DEEP, source=str(path)) from None
    return values if piece.first else values[1:]


def _last_filled(piece: Piece) -> bool:
    """Whether the piece's last element holds more than whitespace (an empty one is an error json
    must meet at its real separator, not at a closing bracket put there)."""
    previous = int(piece.ends[-2]) + 1 if len(piece.ends) > 1 else 0
    return bool(piece.data[previous : int(piece.ends[-1])].strip(JSON_SPACE))


def _check_tail(handle: BinaryIO, path: Path, start: int, offset: int) -> None:
    """After the array only whitespace (JSON's, then any the whole-file reader strips), else
    ``json``'s "Extra data" where JSON's whitespace ends."""
    handle.seek(offset)
    decoder = codecs.getincrementaldecoder("utf-8")()
    extra = -1  # where the first byte past JSON's whitespace is
    position = offset
    while chunk := handle.read(READ_SIZE):
        if extra < 0:
            rest = chunk.lstrip(JSON_SPACE)
            extra = position + len(chunk) - len(rest) if rest else -1
        if decoder.decode(chunk).strip():
            line, column = line_and_column(path, start, extra)
            raise invalid_json("Extra data", line, column, str(path))
        position += len(chunk)
    decoder.decode(b"", final=True)


def line_and_column(path: Path, start: int, offset: int) -> tuple[int, int]:
    """The line and column (in characters, from 1) ``json`` gives for the byte at ``offset`` of a
    UTF-8 file whose text starts at ``start``: counted a read at a time (a compact array is one
    line of hundreds of megabytes)."""
    line, line_start = 1, start
    with path.open("rb") as handle:
        handle.seek(start)
        position = start
        while position < offset and (chunk := handle.read(min(READ_SIZE, offset - position))):
            line += chunk.count(b"\n")
            last = chunk.rfind(b"\n")
            if last >= 0:
                line_start = position + last + 1
            position += len(chunk)
        handle.seek(line_start)
        characters, position = 0, line_start
        while position < offset and (chunk := handle.read(min(READ_SIZE, offset - position))):
            codes = np.frombuffer(chunk, np.uint8)
            characters += int(np.count_nonzero((codes & 0xC0) != 0x80))  # not a continuation byte
            position += len(chunk)
    return line, characters + 1
