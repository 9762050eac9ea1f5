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

_STEPS = np.zeros(256, np.int64)  # depth change by byte
_STEPS[[ord("["), ord("{")]] = 1
_STEPS[[ord("]"), ord("}")]] = -1
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
    raw_breaks: bool = False  # a read it came from holds a line end inside a string (json refuses it)


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
    raw_breaks = False  # in a read since the last piece
    with path.open("rb") as handle:
        handle.seek(position)
        while chunk := handle.read(read_size or READ_SIZE):
            ends, closer, raw = _scan(chunk, state)
            raw_breaks |= raw
            if closer >= 0:
                ends = np.append(ends, closer)
            cut = int(ends[-1]) + 1 if len(ends) else 0
            if cut:
                data = b"".join([*carry, chunk[:cut]])
                end: Literal["comma", "closer"] = "closer" if closer >= 0 else "comma"
                yield Piece(data, offset, ends + carried, first, end, raw_breaks)
                first, offset, carry, carried, raw_breaks = False, offset + len(data), [], 0, raw
            if closer >= 0:
                _check_tail(handle, path, start, position + closer + 1)
                return
            carry.append(chunk[cut:])
            carried += len(chunk) - cut
            position += len(chunk)
    element_values(Piece(b"".join(carry), offset, np.zeros(0, np.int64), first, "eof"), path, start)
    raise InputError("invalid JSON (the array is never closed)", source=str(path))  # json raised above


def _scan(chunk: bytes, state: _State) -> tuple[np.ndarray, int, bool]:
    """Where in one read an element ends (a ``,`` at depth 1, outside strings), where the array
    closes (-1: not in this read), and whether a line end is inside a string (only a pretty-printed
    file has line ends to look at); ``state`` moves on to the read's end.

    One pass over the bytes lists the quotes, brackets and commas (comparisons and one
    ``flatnonzero``: a sixth of the time of a running XOR over every byte, then a lookup table);
    which of them are inside strings, and how deep the others are, is worked out on that list.
    """
    b = np.frombuffer(chunk, np.uint8)
    folded = b | np.uint8(0x20)  # ``[`` and ``]`` fold onto ``{`` and ``}``
    listed = (folded == ord("{")) | (folded == ord("}")) | (b == ord(",")) | (b == ord('"'))
    breaking = b"\n" in chunk or b"\r" in chunk  # ``in``: memchr, far cheaper than a numpy pass
    if breaking:
        listed |= (b == 10) | (b == 13)
    at = np.flatnonzero(listed)
    kinds = b[at]
    quotes = kinds == ord('"')
    if state.backslashes or b"\\" in chunk:
        quotes[quotes] = ~_escaped(b, at[quotes], state.backslashes)
    inside = (np.cumsum(quotes) - quotes + state.inside) % 2 == 1  # after an odd number of real quotes
    raw = breaking and bool((inside & ((kinds == 10) | (kinds == 13))).any())
    outside = ~inside & ((_STEPS[kinds] != 0) | (kinds == ord(",")))
    marks, kinds = at[outside], kinds[outside]
    steps = _STEPS[kinds]
    before = state.depth + np.cumsum(steps) - steps  # the depth each mark meets
    closes = np.flatnonzero((steps < 0) & (before == 1))
    closer = int(marks[closes[0]]) if len(closes) else -1
    ends = marks[(kinds == ord(",")) & (before == 1)]
    if closer >= 0:
        return ends[ends < closer], closer, raw
    if len(marks):
        state.depth = int(before[-1] + steps[-1])
    state.inside = bool((int(quotes.sum()) + state.inside) % 2)
    trailing = len(chunk) - len(chunk.rstrip(b"\\"))
    state.backslashes = trailing + (state.backslashes if trailing == len(chunk) else 0)
    return ends, -1, raw


def _escaped(b: np.ndarray, quotes: np.ndarray, backslashes: int) -> np.ndarray:
    """Which quotes (positions in ``b``) an odd run of backslashes escapes; ``backslashes`` ended
    the read before. The loop turns once per backslash of the longest run (runs are short)."""
    at = quotes - 1  # each quote's run, walked back to its first backslash
    runs = np.zeros(len(quotes), np.int64)
    live = np.ones(len(quotes), bool)
    while True:
        live &= at >= 0
        live[live] = b[at[live]] == ord("\\")
        if not live.any():
            break
        runs += live
        at -= live
    runs += np.where(at < 0, backslashes, 0)  # a run from the read's first byte goes on before it
    return runs % 2 == 1


def element_lines(piece: Piece) -> bytes | None:
    """The piece's elements as JSON Lines, one element a line (its whitespace line ends made
    spaces, the whitespace around it dropped), or None unless every element is an object from
    ``{`` to ``}`` and no string holds a raw line end (``json`` refuses one; a line would split).

    Whitespace next to a separator is outside strings (a string ends at a quote), so finding the
    elements' first and last bytes needs no pass over the piece; a compact array (a results file)
    only has its separators made line ends.
    """
    b = np.frombuffer(piece.data, np.uint8)
    ends = piece.ends
    if piece.end == "eof" or piece.raw_breaks or not len(ends) or ends[0] == 0:
        return None
    if piece.end == "closer" and b[ends[-1]] != ord("]"):
        return None  # closed by a ``}``: json names what is wrong
    first = _skip(b, np.concatenate(([0], ends[:-1] + 1)), 1)
    last = _skip(b, ends - 1, -1)
    if first is None or last is None:
        return None
    if not ((b[first] == ord("{")).all() and (b[last] == ord("}")).all() and (last > first).all()):
        return None
    lines = b.copy()
    if b"\n" in piece.data or b"\r" in piece.data:  # all outside strings (``raw_breaks`` is false)
        lines[(b == 10) | (b == 13)] = ord(" ")
    lines[ends] = ord("\n")
    # Drop the whitespace around each element: the runs before its first byte and after its last
    # (each separator, in the run after its element, is kept as the line's end).
    starts = np.concatenate(([0], last + 1))
    lengths = np.concatenate((first, [len(b)])) - starts
    if lengths[0] == 0 and (lengths[1:] == 1).all():
        return lines.tobytes()  # nothing around the elements but their separators
    dropped = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(int(lengths.sum()))
    keep = np.ones(len(b), bool)
    keep[dropped] = False
    keep[ends] = True
    return lines[keep].tobytes()


def _skip(b: np.ndarray, at: np.ndarray, step: int) -> np.ndarray | None:
    """From each position, the first byte (going ``step``) that is not JSON's whitespace."""
    at = at.copy()
    for _ in range(SKIP_LIMIT):
        moving = _SPACE[b[at]]
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
