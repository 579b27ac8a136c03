"""How long a recording is, read from its headers: what per-minute and audio-token prices bill.

WAV (its data size over its byte rate), MP3 (a Xing, Info or VBRI header's frame count, else
every frame header counted), FLAC (STREAMINFO's samples), Ogg Vorbis and Opus (the last page's
granule position) and MP4/M4A (the movie header). Nothing is decoded. A file whose length cannot
be read (WebM, a broken header) is bounded by its size at the lowest bitrate common codecs use,
so its cost is never below the bill, and a note says so.
"""

from __future__ import annotations

import mmap
from pathlib import Path

# Opus, the leanest codec the API takes, goes down to 6 kbit/s: 750 bytes a second of audio at least.
LOWEST_BYTES_PER_S = 750
BOUNDED = (
    "an audio file's length is not readable from its headers (only WAV, MP3, FLAC, OGG and M4A "
    "are read): priced as 6 kbit/s audio, the least common codecs use, so above the bill"
)
_MP3_BITRATES = {  # kbit/s by (MPEG-1 or not, layer), index 1..14
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}  # by version bits
Data = bytes | mmap.mmap


def file_minutes(path: Path) -> tuple[float | None, str | None]:
    """A recording's length in minutes, and None; or, when its headers do not say, a bound from
    its size and a note saying so; (None, None) when the file cannot be read."""
    try:
        with path.open("rb") as handle:
            size = path.stat().st_size
            if size == 0:
                return 0.0, None
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                seconds = seconds_of(data)
    except (OSError, ValueError):
        return None, None
    if seconds is None:
        return size / LOWEST_BYTES_PER_S / 60, BOUNDED
    return seconds / 60, None


def seconds_of(data: Data) -> float | None:
    """The length in seconds of a WAV, MP3, FLAC, Ogg or MP4 recording (its bytes say which),
    or None."""
    try:
        if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
            return _wav(data)
        if data[4:8] == b"ftyp":
            return _mp4(data)
        if data[:4] == b"OggS":
            return _ogg(data)
        start = _after_id3(data)
        if data[start : start + 4] == b"fLaC":
            return _flac(data, start + 4)
        return _mp3(data, start)
    except (IndexError, ValueError, ZeroDivisionError):
        return None


def _u(data: Data, start: int, size: int, order: str = "big") -> int:
    chunk = data[start : start + size]
    if len(chunk) != size:
        raise IndexError("past the end")
    return int.from_bytes(chunk, order)  # type: ignore[arg-type]  # "big" or "little"


def _wav(data: Data) -> float | None:
    position, byte_rate = 12, 0
    while position + 8 <= len(data):
        kind, size = data[position : position + 4], _u(data, position + 4, 4, "little")
        if kind == b"fmt ":
            byte_rate = _u(data, position + 16, 4, "little")
        elif kind == b"data":
            left = len(data) - position - 8
            # a streamed WAV (as the speech endpoint sends) says 0 or 0xFFFFFFFF: what follows is its data
            size = left if size in (0, 0xFFFFFFFF) else min(size, left)
            return size / byte_rate if byte_rate else None
        position += 8 + size + (size & 1)
    return None


def _after_id3(data: Data) -> int:
    """Where the audio starts after an ID3v2 tag (MP3, and some FLAC files, carry one)."""
    if data[:3] != b"ID3":
        return 0
    size = 0
    for byte in data[6:10]:
        size = size << 7 | (byte & 0x7F)
    footer = 10 if data[5] & 0x10 else 0
    return 10 + size + footer


def _flac(data: Data, position: int) -> float | None:
    while position + 4 <= len(data):
        header = data[position]
        length = _u(data, position + 1, 3)
        if header & 0x7F == 0:  # STREAMINFO: 20 bits of sample rate, ..., 36 bits of samples
            packed = _u(data, position + 4 + 10, 8)
            rate, samples = packed >> 44, packed & ((1 << 36) - 1)
            return samples / rate if rate and samples else None
        if header & 0x80:
            break
        position += 4 + length
    return None


def _ogg(data: Data) -> float | None:
    first = _ogg_packet(data, 0)
    if first.startswith(b"\x01vorbis"):
        rate, skip = _u(first, 12, 4, "little"), 0
    elif first.startswith(b"OpusHead"):
        rate, skip = 48000, _u(first, 10, 2, "little")  # Opus granules count 48 kHz samples
    else:
        return None
    end = len(data)
    while (last := data.rfind(b"OggS", 0, end)) > 0:
        granule = _u(data, last + 6, 8, "little")
        if granule != 0xFFFFFFFFFFFFFFFF:  # a page where no packet ends says -1: look further back
            return max(granule - skip, 0) / rate if rate else None
        end = last
    return None


def _ogg_packet(data: Data, page: int) -> bytes:
    """The first packet's bytes on the page at `page` (enough of it for a codec header)."""
    segments = data[page + 26]
    start = page + 27 + segments
    length = sum(data[page + 27 : page + 27 + segments])
    return bytes(data[start : start + length])


def _mp4(data: Data) -> float | None:
    moov = _atom(data, 0, len(data), b"moov")
    mvhd = None if moov is None else _atom(data, moov[0], moov[1], b"mvhd")
    if mvhd is None:
        return None
    start = mvhd[0]
    if data[start] == 1:  # version 1: 64-bit times
        scale, duration = _u(data, start + 20, 4), _u(data, start + 24, 8)
    else:
        scale, duration = _u(data, start + 12, 4), _u(data, start + 16, 4)
    return duration / scale if scale else None


def _atom(data: Data, start: int, end: int, name: bytes) -> tuple[int, int] | None:
    """The (start, end) of the body of the first `name` box between start and end."""
    position = start
    while position + 8 <= end:
        size, kind, header = _u(data, position, 4), data[position + 4 : position + 8], 8
        if size == 1:
            size, header = _u(data, position + 8, 8), 16
        elif size == 0:
            size = end - position
        if size < header:
            return None
        if kind == name:
            return position + header, min(position + size, end)
        position += size
    return None


def _mp3(data: Data, start: int) -> float | None:
    """A Xing, Info or VBRI header's frame count; else every frame's header, walked from the
    first of three in a row (a lone 0xFFE sync in other bytes is no MP3)."""
    position = _first_frame(data, start)
    first = None if position is None else _frame(data, position)
    if position is None or first is None:
        return None
    mpeg1, layer, rate, _, mono = first
    samples = (384 if layer == 1 else 1152) if mpeg1 or layer != 3 else 576
    side = (17 if mono else 32) if mpeg1 else (9 if mono else 17)
    xing = position + 4 + side
    if data[xing : xing + 4] in (b"Xing", b"Info") and _u(data, xing + 4, 4) & 1:
        return _u(data, xing + 8, 4) * samples / rate
    if data[position + 36 : position + 40] == b"VBRI":
        return _u(data, position + 36 + 14, 4) * samples / rate
    frames = 0
    while (frame := _frame(data, position)) is not None:
        frames += 1
        position += frame[3]
    return frames * samples / rate


def _first_frame(data: Data, start: int, within: int = 1 << 16) -> int | None:
    position = start
    while (position := data.find(b"\xff", position, start + within)) >= 0:
        frame = _frame(data, position)
        if frame is not None:
            second = _frame(data, position + frame[3])
            if second is not None and _frame(data, position + frame[3] + second[3]) is not None:
                return position
        position += 1
    return None


def _frame(data: Data, position: int) -> tuple[bool, int, int, int, bool] | None:
    """(MPEG-1, layer, sample rate, frame length, mono) of the frame header at `position`, or None."""
    if position + 4 > len(data):
        return None
    header = _u(data, position, 4)
    version, layer_bits = header >> 19 & 3, header >> 17 & 3
    bitrate_index, rate_index = header >> 12 & 15, header >> 10 & 3
    if header >> 21 != 0x7FF or version == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    mpeg1, layer = version == 3, 4 - layer_bits
    bitrate = _MP3_BITRATES[(mpeg1, layer)][bitrate_index - 1] * 1000
    rate = _MP3_RATES[version][rate_index]
    padding = header >> 9 & 1
    if layer == 1:
        length = (12 * bitrate // rate + padding) * 4
    else:
        length = (144 if mpeg1 or layer == 2 else 72) * bitrate // rate + padding
    return mpeg1, layer, rate, length, header >> 6 & 3 == 3
