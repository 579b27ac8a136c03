"""Recording lengths read from headers: what per-minute and audio-token prices bill (the files
are built in audiofiles.py from their formats' specifications)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from audiofiles import MP3_FRAME_S, flac, m4a, mp3, ogg

from batchgpt.audio import LOWEST_BYTES_PER_S, file_minutes, seconds_of
from batchgpt.mock import silent_wav


@pytest.mark.parametrize(
    ("data", "seconds"),
    [
        (silent_wav(2.5), 2.5),
        (mp3(383, xing=383), 383 * MP3_FRAME_S),  # a VBR file's frame count, in its Xing header
        (mp3(240), 240 * MP3_FRAME_S),  # no Xing: every frame header counted
        (mp3(100, id3=True), 100 * MP3_FRAME_S),  # after an ID3v2 tag
        (flac(44100, 441000), 10.0),
        (ogg(b"\x01vorbis" + struct.pack("<IBI", 0, 1, 48000) + bytes(14), 48000 * 7), 7.0),
        (ogg(b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 16000, 0, 0), 48000 * 5 + 312), 5.0),
        (m4a(1000, 12500), 12.5),
        (m4a(44100, 44100 * 90, version=1), 90.0),
    ],
    ids=["wav", "mp3-xing", "mp3-cbr", "mp3-id3", "flac", "vorbis", "opus", "m4a", "m4a-v1"],
)
def test_a_recordings_length_is_read_from_its_headers(data, seconds):
    assert seconds_of(data) == pytest.approx(seconds)


def test_a_streamed_wav_that_says_no_size_is_measured_by_its_data():
    wav = bytearray(silent_wav(3.0))
    data_at = wav.index(b"data")
    wav[data_at + 4 : data_at + 8] = b"\xff\xff\xff\xff"  # as the speech endpoint streams it
    assert seconds_of(bytes(wav)) == pytest.approx(3.0)


def test_an_unreadable_file_is_priced_as_the_lowest_bitrate_and_said_so(tmp_path: Path):
    webm = tmp_path / "call.webm"
    webm.write_bytes(b"\x1a\x45\xdf\xa3" + bytes(74_996))  # an EBML header: WebM's length is not read
    minutes, note = file_minutes(webm)
    assert minutes == pytest.approx(75_000 / 750 / 60) and LOWEST_BYTES_PER_S == 750  # 6 kbit/s, Opus's least
    assert note is not None and "6 kbit/s" in note
    recording = tmp_path / "call.mp3"
    recording.write_bytes(mp3(383, xing=383))
    assert file_minutes(recording) == (pytest.approx(383 * MP3_FRAME_S / 60), None)
    assert file_minutes(tmp_path / "missing.mp3") == (None, None)


def test_noise_is_no_mp3():
    assert seconds_of(b"not really mp3 " * 100) is None
    assert seconds_of(b"\xff\xfb" + bytes(50)) is None  # one sync, no frames after it
