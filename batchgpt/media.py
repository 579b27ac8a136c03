"""Where binary answers go: generated images and speech are saved as files beside the results.

Each item's files are named by its id: a readable slug plus a short hash of the exact id, so
ids that slug alike (`a/b`, `a_b`, `a b`, or `猫` and `犬`) never share a file and no item
overwrites another's, while a rerun of the same item replaces its own file rather than piling
up. Files are written through files.atomic_write, so a reader never sees half an image.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from . import files
from .errors import OutputError

MEDIA_TYPES = frozenset({"image", "speech"})  # the task types whose answers can be files (see tasks.py)
_SLUG_CHARS = 40  # enough to recognise an id; the hash keeps the name unique
_HASH_CHARS = 12  # 48 bits: a clash within one job is vanishingly unlikely
_SUFFIX = re.compile(r"[a-z0-9]{1,10}")


def media_folder(results: Path, job: str) -> Path:
    """The folder a job's media files go to, beside its results file."""
    return results.parent / f"{job}-media"


def file_stem(item_id: str, answer: str = "") -> str:
    """`<slug>-<hash>`: the slug for a reader, the hash of the exact id (and of `answer`, what
    names the answer: its request and endpoint) for uniqueness. An answer the store keeps aside,
    or gives to another item, keeps its files: no other answer is written over them."""
    named = item_id if not answer else f"{item_id}\0{answer}"
    digest = hashlib.sha256(named.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    # Leading dots and dashes go, so no name is hidden or taken for an option.
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", item_id)[:_SLUG_CHARS].lstrip(".-")
    return f"{slug}-{digest}" if slug.strip("_") else digest


class MediaWriter:
    def __init__(self, folder: Path):
        self.folder = folder

    def save(self, item_id: str, media: tuple[tuple[str, bytes], ...], answer: str = "") -> str | list[str]:
        """Write the files of one item's answer (`answer` names it: see file_stem); the path, or
        the paths when there are several."""
        stem = file_stem(item_id, answer)
        paths = []
        for number, (suffix, data) in enumerate(media, 1):
            name = f"{stem}-{number}" if len(media) > 1 else stem
            path = self.folder / f"{name}.{_safe_suffix(suffix)}"
            try:
                files.write_bytes(path, data)
            except OutputError as exc:
                raise OutputError(
                    f"{exc}; the answers received before it are kept in the state store, "
                    "and a rerun sends only the rest"
                ) from None
            paths.append(str(path.absolute()))
        return paths[0] if len(paths) == 1 else paths


def _safe_suffix(suffix: str) -> str:
    """The suffix comes from the server's answer (an image's output_format): never a path."""
    suffix = suffix.lower()
    return suffix if _SUFFIX.fullmatch(suffix) else "bin"
