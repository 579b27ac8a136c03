"""The HTML report on retried requests and on a phone (issue 28, item 13): each retried request is
labelled by why each attempt was tried again, not by its final status ("HTTP 200"), and the page
fits 375 CSS pixels without scrolling sideways, in a real browser."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from conftest import SECRET, chat_job, faults
from devtools import PHONE, Viewport, measure
from test_htmlreport import chromium_or_skip, figure
from test_structured import structured_job

from batchgpt.cli import main
from batchgpt.htmlpage import story
from batchgpt.records import Failure

# what each item meets at the mock server, and what the page must say happened to it
FAULTS = ("429:first=1,match=limited", "503:first=1,match=flaky", "500:first=2,match=flaky")
FAULTS += ("malformed:first=1,match=garbled", "500,match=doomed", "400:match=refused")
STORIES = {
    "limited": "HTTP 429 (rate limit), then ok",
    "flaky": "HTTP 503 (overloaded), HTTP 500 (server error), then ok",
    "garbled": "malformed answer, then ok",
    "doomed": "HTTP 500 (server error) ×2, then failed",
}
LONG_ID = "sku-" + "7" * 70  # an id with nowhere to break, as data files have


def test_a_story_says_why_each_attempt_was_tried_again_then_how_it_ended() -> None:
    assert story("ok", ["HTTP 429"]) == "HTTP 429 (rate limit), then ok"
    assert story("ok", ["timeout", "HTTP 503", "HTTP 503"]) == "timeout, HTTP 503 (overloaded) ×2, then ok"
    assert story("error", ["connection", "HTTP 418"]) == "connection error, HTTP 418, then failed"
    assert story("skipped", ["HTTP 500"]) == "HTTP 500 (server error), then not answered"


def test_an_unusable_answer_is_retried_for_what_was_wrong_with_it_not_for_its_status() -> None:
    """A malformed answer arrives with HTTP 200: its retry was counted, and shown, as 'HTTP 200'."""
    assert Failure("malformed", "not JSON", 200).reason == "malformed answer"
    assert Failure("oversized", "too big", 200).reason == "oversized answer"
    assert Failure("http", "slow down", 429).reason == "HTTP 429"
    assert Failure("timeout", "no answer in 60 s").reason == "timeout"


def faulty_run(cli: Any, server: Any, write_job: Any, tmp_path: Path, name: str = "t") -> Path:
    """A run whose items meet FAULTS (and one with a long id); its page."""
    faults(server, *FAULTS)
    prompts = ["fine", *STORIES, "refused", "fine again"]
    # a long timeout: a busy machine's first answer may be slow, and a timeout would join the stories
    job = chat_job(prompts, name=name, limits={"concurrency": 2, "timeout": 30, "max_retries": 2})
    job["tasks"][0]["items"][-1]["id"] = LONG_ID
    result = cli("run", str(write_job(job)))
    assert result.exit_code == 1, result.output  # `doomed` and `refused` failed
    return tmp_path / "out" / f"{name}-report.html"


def test_each_retried_request_is_labelled_by_why_in_the_report_and_runs(cli, server, write_job, tmp_path):
    page = faulty_run(cli, server, write_job, tmp_path).read_text(encoding="utf-8")
    histories = page[page.index("Retries and rate-limit waits") : page.index("Errors by kind")]
    for n, said in enumerate(STORIES.values(), 1):
        # its row in the retried requests' table, naming the item (p1...p4)
        assert re.search(rf"<td>{re.escape(said)}</td><td class=\"n\">1</td><td><code>p{n}</code></td>", histories)
    assert "4 requests tried more than once" in histories
    slowest = page[page.index("Slowest items") :]
    assert f"<td>{STORIES['flaky']}</td>" in slowest  # the status of a retried item is its story
    assert re.search(r"<td>error</td><td class=\"n\">[^<]+</td><td class=\"n\">1</td>", slowest)  # refused: once
    assert "<title>malformed answer: 1</title>" in page  # retries by cause
    assert "HTTP 200" not in page  # the malformed answer's status is not why it was retried
    assert figure(page, "failed") == "2"

    listed = CliRunner().invoke(main, ["runs", "--state", str(tmp_path / ".batchgpt")])  # whole, off a terminal
    assert "malformed answer: 1" in listed.stdout and "HTTP 200" not in listed.stdout


def test_a_reasked_structured_answer_says_it_missed_its_schema(cli, server, write_job, tmp_path):
    # the mock counts a re-ask as attempts of the request it asks again: the first is refused, the
    # second answers off the schema, the re-ask meets a server error, and its retry is answered
    faults(server, "429:first=1", "schema-miss:first=2", "500:first=3")
    job = structured_job(["Red shoe"])
    job["limits"]["timeout"] = 30  # a busy machine's first answer may be slow: no timeout in the story
    assert cli("run", str(write_job(job))).exit_code == 0
    page = (tmp_path / "out" / "t-report.html").read_text(encoding="utf-8")
    said = "HTTP 429 (rate limit), answer missed its schema, HTTP 500 (server error), then ok"
    assert f"<td>{said}</td>" in page


WIDTH = "document.documentElement.scrollWidth"
SEEN = "document.documentElement.clientWidth"
TEXT = "document.body.innerText"


def test_the_page_fits_a_phone_and_a_desktop_without_scrolling_sideways(cli, server, write_job, tmp_path):
    """At 375 px the page was 784 px wide: its tables and facts pushed it, and a phone scrolled
    the whole page sideways. Tables scroll in their own box now, and long words wrap."""
    binary = chromium_or_skip()
    name = "nightly-translation-of-the-whole-product-catalogue-into-seven-languages"
    page = faulty_run(cli, server, write_job, tmp_path, name)
    assert SECRET not in page.read_text(encoding="utf-8")

    phone = measure(binary, page, tmp_path / "phone", Viewport(PHONE, 812, mobile=True), {"width": WIDTH, "text": TEXT})
    assert phone["width"] <= PHONE, phone["width"]
    assert phone["console"] == []  # nothing blocked, nothing erred
    for said in STORIES.values():
        assert said in phone["text"]  # the labels are on the page as rendered

    desktop = measure(
        binary, page, tmp_path / "desk", Viewport(1280, 900, mobile=False), {"width": WIDTH, "seen": SEEN}
    )
    assert desktop["width"] <= desktop["seen"] <= 1280 and desktop["console"] == []
