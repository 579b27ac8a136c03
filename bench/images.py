"""A 100,000-image dry run (issue 26: under 10 s): real images of many sizes, made once with Pillow
into a cache folder, priced as a captioning job's requests would be.

    python bench/images.py make              # the images (once; ~1 GB for 100,000) and the job file
    python bench/images.py estimate          # read each file's header and price the lot: the dry run's
                                             # pricing path, one process, with the figures it took
    python bench/images.py whole             # `batchgpt run JOB --dry-run` on the job (items_from a glob)

`estimate` lists the folder, reads each image's size from its header (mediainfo.read_image), builds
the request the job side builds (the image's base64 a marker in its part), and sums and prices
them as the dry run does (drytable.sums, then the table); it does not read the files whole (as
the job side does for the request hash). Time either as a whole process from outside too, e.g.
`/usr/bin/time -v python bench/images.py estimate`.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batchgpt.records import Request

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT.parent / "shared" / "tiktoken"))
CACHE = Path(tempfile.gettempdir()) / "batchgpt-bench-images"
DISTINCT = 100  # images encoded; the rest are copies of them under other names
PROMPT = "Describe this photo in one sentence."
JOB = f"""tasks:
  - name: caption
    type: chat
    model: gpt-4o
    max_tokens: 60
    detail: auto
    items_from: photos/*
    template: "{PROMPT}"
"""


def make(folder: Path, n: int) -> None:
    """`n` images in folder/photos, half PNG and half JPEG, of DISTINCT sizes from 32 to 2048 pixels
    a side; kept when already made."""
    from PIL import Image  # only `make` needs Pillow

    photos = folder / "photos"
    if photos.is_dir() and sum(1 for _ in os.scandir(photos)) == n:
        return
    shutil.rmtree(photos, ignore_errors=True)
    photos.mkdir(parents=True)
    chance = random.Random(26)
    sources = []
    for i in range(DISTINCT):
        size = (chance.randint(32, 2048), chance.randint(32, 2048))
        kind = "png" if i % 2 else "jpg"
        path = photos / f"photo-{i:06d}.{kind}"
        colour = (chance.randrange(256), chance.randrange(256), chance.randrange(256))
        Image.new("RGB", size, colour).save(path, "PNG" if kind == "png" else "JPEG", quality=30)
        sources.append(path)
    for i in range(DISTINCT, n):
        source = sources[i % DISTINCT]
        shutil.copyfile(source, photos / f"photo-{i:06d}{source.suffix}")
    (folder / "captions.yaml").write_text(JOB)


def requests(folder: Path, model: str) -> Iterator[Request]:
    from batchgpt.attachments import Attachment, marker
    from batchgpt.mediainfo import read_image
    from batchgpt.records import Provider, Request, dump

    provider = Provider()
    for seq, entry in enumerate(sorted(os.scandir(folder / "photos"), key=lambda e: e.name)):
        info = read_image(entry.path)
        if info is None:
            sys.exit(f"{entry.path}: no image")
        attachment = Attachment("image", entry.path, info.mime, "auto", entry.stat().st_size, info.width, info.height)
        url = {"url": f"data:{info.mime};base64,{marker(0)}", "detail": "auto"}
        content = [{"type": "text", "text": PROMPT}, {"type": "image_url", "image_url": url}]
        body = {"model": model, "max_tokens": 60, "messages": [{"role": "user", "content": content}]}
        yield Request(
            seq, entry.name, "caption", "chat", model, "/chat/completions", body, dump(body), str(seq), provider, 60,
            attachments=(attachment,),
        )  # fmt: skip


def estimate(folder: Path, model: str) -> None:
    from batchgpt.bounds import Estimator
    from batchgpt.drytable import sums, table
    from batchgpt.pricing import Pricing
    from batchgpt.records import Limits

    started, cpu = time.perf_counter(), time.process_time()
    pricing = Pricing()
    rows = table(sums(requests(folder, model), Estimator(pricing)), pricing, Limits(), offline=False)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    for row in rows:
        print({k: row[k] for k in ("task", "model", "requests", "prompt_tokens", "cost_usd_max", "notes")})
    print(f"{rows[-1]['requests']:,} images priced in {wall:.2f} s wall, {cpu:.2f} s CPU (after start-up)")


def whole(folder: Path) -> None:
    started = time.perf_counter()
    done = subprocess.run(
        ["batchgpt", "run", str(folder / "captions.yaml"), "--dry-run"], capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
    print(f"batchgpt run --dry-run: exit {done.returncode}, {wall:.2f} s wall")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["make", "estimate", "whole"])
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--model", default="gpt-4o")
    parser.add_argument("--cache", type=Path, default=CACHE, help=f"where the images are kept (default {CACHE})")
    args = parser.parse_args()
    folder = args.cache / str(args.n)
    if args.step == "make":
        make(folder, args.n)
    elif args.step == "estimate":
        estimate(folder, args.model)
    else:
        whole(folder)


if __name__ == "__main__":
    main()
