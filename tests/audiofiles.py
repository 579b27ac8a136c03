"""Recordings built from their formats' specifications, each with a length known beforehand,
for the tests of what their length costs."""

from __future__ import annotations

import struct

# MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, stereo, no padding: 144 * 128000 // 44100 = 417 bytes,
# 1,152 samples a frame (ISO/IEC 11172-3)
MP3_HEADER = bytes([0xFF, 0xFB, 0x90, 0x00])
MP3_FRAME = 417
MP3_FRAME_S = 1152 / 44100


def mp3(frames: int, xing: int | None = None, id3: bool = False) -> bytes:
    first = bytearray(MP3_HEADER + bytes(MP3_FRAME - 4))
    if xing is not None:  # the Xing tag sits after the side information: 32 bytes for stereo MPEG-1
        first[4 + 32 : 4 + 32 + 12] = b"Xing" + struct.pack(">II", 1, xing)
    tag = b"ID3\x04\x00\x00" + bytes([0, 0, 0x01, 0x00]) + bytes(128) if id3 else b""  # 128-byte body
    return tag + bytes(first) + (MP3_HEADER + bytes(MP3_FRAME - 4)) * (frames - 1)


def flac(rate: int, samples: int) -> bytes:
    packed = rate << 44 | 1 << 41 | 15 << 36 | samples  # 20 bits rate, 3 channels-1, 5 bps-1, 36 samples
    streaminfo = struct.pack(">HH", 4096, 4096) + bytes(6) + packed.to_bytes(8, "big") + bytes(16)
    return b"fLaC" + bytes([0x80]) + len(streaminfo).to_bytes(3, "big") + streaminfo


def ogg_page(granule: int, packet: bytes, kind: int) -> bytes:
    header = b"OggS" + bytes([0, kind]) + struct.pack("<qIII", granule, 1, 0, 0)
    return header + bytes([1, len(packet)]) + packet


def ogg(codec: bytes, granule: int) -> bytes:
    return ogg_page(0, codec, 2) + ogg_page(granule, b"", 4)


def m4a(timescale: int, duration: int, version: int = 0) -> bytes:
    if version:
        times = struct.pack(">QQIQ", 0, 0, timescale, duration)
    else:
        times = struct.pack(">IIII", 0, 0, timescale, duration)
    mvhd_body = bytes([version, 0, 0, 0]) + times + bytes(80)
    mvhd = struct.pack(">I", 8 + len(mvhd_body)) + b"mvhd" + mvhd_body
    moov = struct.pack(">I", 8 + len(mvhd)) + b"moov" + mvhd
    ftyp = struct.pack(">I", 16) + b"ftypM4A " + bytes(4)
    free = struct.pack(">I", 8) + b"mdat"
    return ftyp + free + moov
