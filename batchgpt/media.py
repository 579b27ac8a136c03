"""Where binary answers go: generated images and speech are saved as files beside the results.

Files are named after the item id, so a rerun overwrites rather than piles up, and written to a
temporary name first, so a reader never sees half an image.
"""
from __future__ import annotations

import os
import re
from pathlib import Path


class MediaWriter:
    def __init__(self, folder: Path):
        self.folder = folder

    def save(self, item_id: str, files: tuple[tuple[str, bytes], ...]) -> str | list[str]:
        """Write the files of one item; the path, or the paths when there are several."""
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", item_id)
        paths = []
        for number, (suffix, data) in enumerate(files, 1):
            name = f"{stem}-{number}.{suffix}" if len(files) > 1 else f"{stem}.{suffix}"
            path = self.folder / name
            temporary = path.with_name(f".{name}.{os.getpid()}.tmp")
            temporary.write_bytes(data)
            os.replace(temporary, path)
            paths.append(str(path.absolute()))
        return paths[0] if len(paths) == 1 else paths
