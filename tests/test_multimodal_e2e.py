"""The three multimodal example jobs (jobs/captions.yaml, invoices.yaml, calls.yaml) through the
real CLI against the mock server, online and in batch mode: each answer names what the mock read
from the bytes that arrived (an image's size, a PDF's pages, a recording's length, and the first
12 hex digits of the bytes' sha256), computed here from the files themselves; each row's
prompt_tokens are what the mock billed for the request that carried that file; a second run sends
nothing, and a photo changed since is sent again, alone. Once more over https with a real
certificate.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import SECRET
from PIL import Image
from test_tls import CA, server_context

from batchgpt.cli import main
from batchgpt.mock import Config, MockServer
from batchgpt.mock.inputs import media

JOBS = Path(__file__).resolve().parents[1] / "jobs"
CHAT = "/v1/chat/completions"


@dataclass(frozen=True)
class Example:
    job: str
    files: dict[str, str]  # item id -> its file, relative to the job file
    column: str  # a results column that holds the answer's text


PHOTOS = {f"data/photos/{n}.jpg": f"data/photos/{n}.jpg" for n in ("chair", "lamp", "mug")}
INVOICES = {n: f"data/invoices/{n}.pdf" for n in ("acme-1042", "northwind-77")}
CALLS = {n: f"data/calls/{n}.wav" for n in ("refund", "login")}
EXAMPLES = [
    Example("captions", PHOTOS, "output"),
    Example("invoices", INVOICES, "vendor"),  # a schema's field, as its own column
    Example("calls", CALLS, "output"),
]


def described(path: Path) -> str:
    """What the mock's answer says of a file it received, worked out here from the file."""
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()[:12]
    if path.suffix == ".jpg":
        with Image.open(path) as image:
            return f"[image {image.width}x{image.height} sha256:{digest}]"
    if path.suffix == ".pdf":
        return f"[pdf 1 page sha256:{digest}]"
    with wave.open(str(path)) as recording:
        seconds = recording.getnframes() / recording.getframerate()
    return f"[audio {seconds:.1f} s sha256:{digest}]"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def copy_jobs(tmp_path: Path, batch: bool) -> Path:
    """The jobs folder, copied; in batch mode each job says `mode: batch`."""
    folder = tmp_path / "jobs"
    shutil.copytree(JOBS, folder, ignore=shutil.ignore_patterns("out", ".batchgpt"))
    if batch:
        for example in EXAMPLES:
            job = folder / f"{example.job}.yaml"
            job.write_text(job.read_text(encoding="utf-8") + "mode: batch\n", encoding="utf-8")
    return folder


def run(job: Path, base_url: str, *extra: str) -> Result:
    """`batchgpt run`, one request at a time (so that the mock's bills line up with its log)."""
    args = ["run", str(job), "--base-url", base_url, "--concurrency", "1", "--wait", "--poll", "0", *extra]
    return CliRunner().invoke(main, args, catch_exceptions=False)


def rows(folder: Path, name: str) -> dict[str, dict[str, str]]:
    with (folder / "out" / f"{name}.csv").open(encoding="utf-8", newline="") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


def digests(body: dict[str, Any]) -> list[str]:
    """The hashes of the files a chat body carries, as the mock reads them."""
    return [m.digest for m in media("chat", body)]


def online_bills(server: MockServer) -> dict[str, int]:
    """The prompt tokens the mock billed online, by the hash of the file each request carried."""
    sent = [s for s in server.seen if s.path == CHAT]
    return {digests(s.body)[0]: b["usage"]["prompt_tokens"] for s, b in zip(sent, server.billed, strict=True)}


def uploads(server: MockServer, purpose: str) -> list[dict[str, Any]]:
    found = [f for f in server.batch.files.values() if f.purpose == purpose]
    return [json.loads(line) for f in found for line in f.data.splitlines()]


def batch_bills(server: MockServer) -> dict[str, int]:
    """The prompt tokens the mock billed in its batches' output files, by the hash of the file
    each request (its input line, by custom_id) carried."""
    carried = {line["custom_id"]: digests(line["body"])[0] for line in uploads(server, "batch")}
    answered = uploads(server, "batch_output")
    return {carried[a["custom_id"]]: a["response"]["body"]["usage"]["prompt_tokens"] for a in answered}


def sent_count(server: MockServer, batch: bool) -> int:
    return len(uploads(server, "batch")) if batch else len([s for s in server.seen if s.path == CHAT])


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


@pytest.mark.parametrize("batch", [False, True], ids=["online", "batch"])
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.job for e in EXAMPLES])
def test_each_example_sends_its_files_bills_them_and_resumes(server, keyed, tmp_path, example, batch):
    folder = copy_jobs(tmp_path, batch)
    job = folder / f"{example.job}.yaml"
    first = run(job, server.base_url)
    assert first.exit_code == 0, first.output
    found = rows(folder, example.job)
    assert set(found) == set(example.files)
    bills = batch_bills(server) if batch else online_bills(server)
    for item, name in example.files.items():
        row, path = found[item], folder / name
        assert row["status"] == "ok" and row["mode"] == ("batch" if batch else "online")
        assert row[example.column].endswith(described(path)), row
        assert int(row["prompt_tokens"]) == bills[sha(path)]  # billed as the mock billed it
    sent = sent_count(server, batch)
    assert sent == len(example.files)

    again = run(job, server.base_url)
    assert again.exit_code == 0, again.output
    assert sent_count(server, batch) == sent  # nothing sent twice
    assert f"({len(example.files)} answered by earlier runs)" in again.output
    assert rows(folder, example.job) == found


def test_invoice_fields_arrive_as_columns_made_from_the_pdf(server, keyed, tmp_path):
    folder = copy_jobs(tmp_path, batch=False)
    assert run(folder / "invoices.yaml", server.base_url).exit_code == 0
    row = rows(folder, "invoices")["acme-1042"]
    said = f"Echo: Read invoice acme-1042. {described(folder / INVOICES['acme-1042'])}"
    answer = json.loads(row["output"])
    assert answer == {"vendor": said, "invoice_number": said, "total": 1.5, "currency": "EUR", "due_date": said}
    assert (row["vendor"], row["total"], row["currency"]) == (said, "1.5", "EUR")
    [sent] = [s.body for s in server.seen if s.path == CHAT and "acme" in json.dumps(s.body["messages"][-1])]
    assert sent["response_format"]["json_schema"]["name"] == "invoice"
    assert sent["response_format"]["json_schema"]["strict"] is True


@pytest.mark.parametrize("batch", [False, True], ids=["online", "batch"])
def test_a_changed_photo_is_sent_again_and_only_it(server, keyed, tmp_path, batch):
    folder = copy_jobs(tmp_path, batch)
    job = folder / "captions.yaml"
    assert run(job, server.base_url).exit_code == 0
    before = rows(folder, "captions")
    sent = sent_count(server, batch)
    mug = folder / "data/photos/mug.jpg"
    Image.new("RGB", (120, 90), (20, 90, 200)).save(mug, "JPEG")

    again = run(job, server.base_url)
    assert again.exit_code == 0, again.output
    assert sent_count(server, batch) == sent + 1
    last = uploads(server, "batch")[-1]["body"] if batch else [s for s in server.seen if s.path == CHAT][-1].body
    assert digests(last) == [sha(mug)]
    after = rows(folder, "captions")
    assert after["data/photos/mug.jpg"]["output"] == f"Echo: Caption this photo of a mug. {described(mug)}"
    unchanged = ("data/photos/chair.jpg", "data/photos/lamp.jpg")
    assert [after[i]["output"] for i in unchanged] == [before[i]["output"] for i in unchanged]
    assert "(2 answered by earlier runs)" in again.output


def test_the_captions_run_over_https_with_a_real_certificate(keyed, tmp_path, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(CA))  # as tests/test_tls.py's `trusted`
    https = MockServer(Config(api_key=SECRET, tls=server_context())).start()
    try:
        folder = copy_jobs(tmp_path, batch=False)
        assert https.base_url.startswith("https://")
        result = run(folder / "captions.yaml", https.base_url)
        assert result.exit_code == 0, result.output
        bills = online_bills(https)
    finally:
        https.stop()
    for item, name in PHOTOS.items():
        row = rows(folder, "captions")[item]
        assert row["output"].endswith(described(folder / name))
        assert int(row["prompt_tokens"]) == bills[sha(folder / name)]
