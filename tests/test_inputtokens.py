"""Attachments priced before they are sent: each counted as the API facts (section 14) work the
formulas by hand, the rest of its body as before, and a budget's worst case never below the bill.

Prices are written out from genai-prices 0.2.5 (gpt-4o: $2.50 in, $10 out per 1M tokens;
gpt-audio: text $2.50 in, $10 out, audio $32 in), never read back from batchgpt.
"""

from __future__ import annotations

import base64
import io
import itertools
from typing import Any

import pytest
from PIL import Image

from batchgpt import inputtokens as inputs
from batchgpt.attachments import Attachment, marker
from batchgpt.bounds import IMAGES_AT_MOST, Estimator
from batchgpt.drytable import sums, table
from batchgpt.mock import silent_wav
from batchgpt.pricing import Pricing
from batchgpt.records import Limits, Provider, Request, dump
from batchgpt.tokens import Count, Counter
from batchgpt.vision import image_tokens

M = 1e6
ASK = {"type": "text", "text": "Describe this."}


def image(width: int | None, height: int | None, detail: str | None = None, source: str = "/p/a.png") -> Attachment:
    return Attachment("image", source, "image/png", detail, 1000, width, height)


def count(model: str, attachment: Attachment) -> int:
    counted = inputs.tokens(model, attachment)
    return counted.seen + counted.read


def request(model: str, parts: list[dict[str, Any]], attached: list[Attachment], most: int = 100) -> Request:
    """A chat request as the job side builds one: each local file's base64 a marker in its part."""
    body = {"model": model, "max_tokens": most, "messages": [{"role": "user", "content": [ASK, *parts]}]}
    return Request(
        0,
        "a",
        "t",
        "chat",
        model,
        "/chat/completions",
        body,
        dump(body),
        "h",
        Provider(),
        most,
        attachments=tuple(attached),
    )


def image_part(index: int, detail: str | None = None) -> dict[str, Any]:
    url: dict[str, Any] = {"url": "data:image/png;base64," + marker(index)}
    return {"type": "image_url", "image_url": {**url, "detail": detail} if detail else url}


def text_count(model: str) -> Count:
    """The request's text as the cookbook counts it: its message, its words and the reply's priming
    (approximate where tiktoken's encodings cannot be had, as the estimate's is then)."""
    return Counter().messages(model, [{"role": "user", "content": ASK["text"]}])


def text_tokens(model: str) -> int:
    return text_count(model).tokens


# ---------------------------------------------------------------- the formulas, by hand


@pytest.mark.parametrize(
    ("model", "size", "detail", "tokens"),
    [
        ("gpt-4o", (1024, 1024), "high", 765),  # 768x768: 4 tiles, 85 + 4 x 170
        ("gpt-4o", (1024, 1024), "low", 85),
        ("gpt-4o", (512, 512), "high", 255),  # not scaled up: 1 tile
        ("gpt-4o", (2048, 4096), "high", 1105),  # 1024x2048, then 768x1536: 6 tiles
        ("gpt-4o", (2048, 4096), "auto", 1105),  # auto counts as high
        ("gpt-4o", (2048, 4096), None, 1105),
        ("gpt-4o-mini", (1024, 1024), "high", 25501),  # 2833 + 4 x 5667
        ("gpt-4o-mini", (1024, 1024), "low", 2833),
        ("gpt-4.1-mini", (1000, 700), "high", 1141),  # 32 x 22 = 704 patches x 1.62 = 1140.48, up
        ("gpt-4.1-mini", (1000, 700), "low", 1141),  # detail changes nothing
        ("gpt-4.1-mini", (3000, 3000), "high", 2489),  # 94 x 94 patches, capped at 1536: x 1.62 = 2488.32
    ],
)
def test_an_image_of_known_size_counts_what_the_formula_bills(model, size, detail, tokens) -> None:
    counted = inputs.tokens(model, image(*size, detail))
    assert (counted.seen, counted.read, counted.heard, counted.notes) == (tokens, 0, 0, ())


def test_an_image_of_unknown_size_counts_the_models_most_and_says_so() -> None:
    url = image(None, None, source="https://example.com/cat.jpg")
    assert inputs.tokens("gpt-4o", url) == inputs.Tokens(85 + 8 * 170, notes=(inputs.UNSIZED,))
    assert inputs.tokens("gpt-4o-mini", url) == inputs.Tokens(2833 + 8 * 5667, notes=(inputs.UNSIZED,))
    assert inputs.tokens("gpt-4.1-mini", url) == inputs.Tokens(2489, notes=(inputs.UNSIZED,))  # 1536 x 1.62, up
    low = image(None, None, "low", source="https://example.com/cat.jpg")
    assert inputs.tokens("gpt-4o", low) == inputs.Tokens(85)  # low costs the base at any size: exact


def test_a_data_url_image_is_sized_by_its_header() -> None:
    out = io.BytesIO()
    Image.new("RGB", (640, 480)).save(out, "JPEG")
    url = "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()
    # 640x480 is inside 768 on its short side: 2 x 1 tiles
    assert inputs.tokens("gpt-4o", Attachment("image", url, "image/jpeg")) == inputs.Tokens(85 + 2 * 170)
    exif = Image.Exif()
    exif[0x010E] = "x" * 30_000  # metadata past the first 4 KiB: the header is looked for further
    out = io.BytesIO()
    Image.new("RGB", (1000, 700)).save(out, "JPEG", exif=exif.tobytes())
    url = "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()
    assert inputs.tokens("gpt-4o", Attachment("image", url, "image/jpeg")) == inputs.Tokens(85 + 4 * 170)
    broken = Attachment("image", "data:image/jpeg;base64,not-an-image")
    assert inputs.tokens("gpt-4o", broken).notes == (inputs.UNSIZED,)


def test_pdf_pages_count_their_text_and_a_page_image_each() -> None:
    pdf = Attachment("file", "/p/contract.pdf", "application/pdf", size=50_000, pages=3)
    counted = inputs.tokens("gpt-4o", pdf)
    assert (counted.seen, counted.read) == (3 * 1445, 3 * inputs.PAGE_TEXT_TOKENS)
    assert counted.notes == (inputs.PDF_PAGES,)
    low = inputs.tokens("gpt-4o", Attachment("file", "/p/c.pdf", "application/pdf", "low", 50_000, pages=2))
    assert low.seen == 2 * 85
    by_url = inputs.tokens("gpt-4o", Attachment("file", "https://example.com/c.pdf"))
    assert (by_url.seen, by_url.read) == (100 * 1445, 100 * inputs.PAGE_TEXT_TOKENS)  # the API reads at most 100
    assert by_url.notes == (inputs.PDF_PAGES, inputs.PAGES_UNKNOWN)
    tiny = Attachment("file", "/p/t.pdf", "application/pdf", size=40)  # pages not counted: 40 bytes hold 10 at most
    assert count("gpt-4o", tiny) == 10 * (1445 + inputs.PAGE_TEXT_TOKENS)
    assert count("gpt-4o", Attachment("file", "/p/c.pdf", "application/pdf", pages=250)) == by_url.seen + by_url.read


def test_other_documents_count_their_text_at_most() -> None:
    notes = Attachment("file", "/p/notes.txt", "text/plain", size=1234)
    assert inputs.tokens("gpt-4o", notes) == inputs.Tokens(read=1234, notes=(inputs.DOCUMENT,))
    packed = Attachment("file", "/p/report.docx", "application/vnd.openxmlformats-officedocument", size=9)
    assert count("gpt-4o", packed) == 100 * inputs.PAGE_TEXT_TOKENS


def test_audio_counts_its_length_and_unreadable_lengths_are_bounded_by_size() -> None:
    timed = Attachment("audio", "/p/call.wav", "audio/wav", size=64_044, seconds=12.5)
    assert inputs.tokens("gpt-audio", timed) == inputs.Tokens(heard=188)  # 12.5 s x 10 a second x 1.5, up
    untimed = Attachment("audio", "/p/call.mp3", "audio/mpeg", size=7500)  # 10 s at 6 kbit/s, the least
    counted = inputs.tokens("gpt-audio", untimed)
    assert counted.heard == 150 and counted.notes[0].startswith("an audio file's length is not readable")


# ---------------------------------------------------------------- the bound and the dry run


def test_the_bound_counts_an_attached_image_once_by_its_size() -> None:
    sized = request("gpt-4o", [image_part(0)], [image(1024, 1024)])
    bound = Estimator(Pricing()).bound(sized)
    assert bound.prompt == text_count("gpt-4o") + Count(765)  # a size read from the file: not approximate
    assert (bound.images, bound.marks) == (765, ())
    url = "https://example.com/cat.png"
    by_url = request("gpt-4o", [{"type": "image_url", "image_url": {"url": url}}], [image(None, None, source=url)])
    bound = Estimator(Pricing()).bound(by_url)
    assert bound.prompt.tokens == text_tokens("gpt-4o") + 1445 and bound.marks == (inputs.UNSIZED,)


def test_parts_no_attachment_names_are_counted_as_before() -> None:
    url = "https://example.com/cat.png"
    loose = {"type": "image_url", "image_url": {"url": "https://example.com/not-attached.png"}}
    parts = [image_part(0, "low"), {"type": "image_url", "image_url": {"url": url}}, loose]
    bound = Estimator(Pricing()).bound(
        request("gpt-4o", parts, [image(300, 300, "low"), image(None, None, "low", url)])
    )
    # the two attached, low: 85 each; the loose part at the most, as any image part in a body
    assert bound.prompt.tokens == text_tokens("gpt-4o") + 85 + 85 + 1445
    assert bound.marks == (IMAGES_AT_MOST,)


def test_a_pdf_and_audio_attached_are_counted_from_their_attachment_not_their_marker() -> None:
    pdf = Attachment("file", "/p/c.pdf", "application/pdf", size=9000, pages=2)
    document = {"type": "file", "file": {"filename": "c.pdf", "file_data": "data:application/pdf;base64," + marker(0)}}
    heard = {"type": "input_audio", "input_audio": {"data": marker(1), "format": "wav"}}
    call = Attachment("audio", "/p/c.wav", "audio/wav", size=64_044, seconds=4.0)
    bound = Estimator(Pricing()).bound(request("gpt-audio", [document, heard], [pdf, call]))
    # gpt-audio has no image formula listed: a page image at the most any model counts, 1536 x 2.46, up
    assert bound.images == 2 * 3779
    assert bound.prompt.tokens == text_tokens("gpt-audio") + 2 * (inputs.PAGE_TEXT_TOKENS + 3779)
    assert bound.heard == 60 and bound.prompt.approximate and bound.marks == (inputs.PDF_PAGES,)  # 4 s x 10 x 1.5


def test_the_dry_run_table_says_when_attachments_make_it_approximate() -> None:
    estimator, url = Estimator(Pricing()), "https://example.com/cat.png"
    sized = [request("gpt-4o", [image_part(0)], [image(1024, 1024)]) for _ in range(3)]
    unsized = request(
        "gpt-4o-mini", [{"type": "image_url", "image_url": {"url": url}}], [image(None, None, source=url)]
    )
    exact, guessed, total = table(sums([*sized, unsized], estimator), Pricing(), Limits(), offline=False)
    assert exact["prompt_tokens"] == 3 * (text_tokens("gpt-4o") + 765)
    assert ("approximate" in exact["notes"]) == text_count("gpt-4o").approximate  # the sized images add no doubt
    assert exact["cost_usd_max"] == pytest.approx(exact["prompt_tokens"] * 2.5 / M + 3 * 100 * 10 / M)
    assert inputs.UNSIZED in guessed["notes"] and "approximate token count" in guessed["notes"]
    assert "approximate" in total["notes"]


# ---------------------------------------------------------------- the budget: never below the bill


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4o-mini", "gpt-4.1-mini", "gpt-4.1-nano", "o3", "gpt-5"])
def test_an_image_jobs_worst_case_is_never_below_the_formulas_bill(model: str) -> None:
    estimator, pricing = Estimator(Pricing()), Pricing()
    sizes = [(1, 1), (300, 200), (512, 512), (1024, 1024), (1023, 1025), (2048, 4096), (5000, 300), (8000, 8000)]
    for (width, height), detail in itertools.product(sizes, ("low", "high", "auto", None)):
        bill = text_tokens(model) + image_tokens(model, width, height, detail)
        billed = pricing.cost(model, bill, 100)
        known = request(model, [image_part(0, detail)], [image(width, height, detail)])
        unknown = request(model, [image_part(0, detail)], [image(None, None, detail, "https://example.com/a.png")])
        for asked in (known, unknown):
            worst = estimator.worst_cost(asked)
            assert billed is not None and worst is not None and worst >= billed, (model, width, height, detail)
        assert estimator.bound(known).prompt.tokens == bill  # a known size: the bill itself


def test_the_budget_holds_an_image_requests_worst_case_online_and_in_a_batch() -> None:
    from dataclasses import replace

    from batchgpt.batch.plan import batch_worst
    from batchgpt.budget import Budget
    from batchgpt.online.spending import Spending
    from batchgpt.records import Pack

    estimator, pricing = Estimator(Pricing()), Pricing()
    photos = [request("gpt-4o", [image_part(0)], [image(4000, 3000)]) for _ in range(3)]
    photos = [replace(photo, seq=n, id=f"p{n}") for n, photo in enumerate(photos)]
    # 4000x3000 -> 2048x1536 -> 1024x768: 2 x 2 tiles, 765 tokens; an answer of up to 100 tokens
    bill = pricing.cost("gpt-4o", text_tokens("gpt-4o") + 765, 100)
    spending = Spending(Budget(1.0), estimator, lambda why: None)
    for photo in photos:
        pack = Pack.of(photo)
        held = spending.worst(pack, spending.bounds(pack))
        assert isinstance(held, float) and bill is not None and held >= bill
        batched = batch_worst(estimator, photo)
        assert batched is not None and batched >= pricing.cost("gpt-4o", text_tokens("gpt-4o") + 765, 100, batch=True)


@pytest.mark.usefixtures("exact_encodings")
def test_an_image_of_known_size_with_exact_text_is_held_at_its_bill() -> None:
    """The size known and the text counted exactly: the budget holds the bill, not the most."""
    from batchgpt.budget import Budget
    from batchgpt.online.spending import Spending
    from batchgpt.records import Pack

    estimator, pricing = Estimator(Pricing()), Pricing()
    pack = Pack.of(request("gpt-4o", [image_part(0)], [image(4000, 3000)]))
    spending = Spending(Budget(1.0), estimator, lambda why: None)
    held = spending.worst(pack, spending.bounds(pack))
    assert held == pytest.approx(pricing.cost("gpt-4o", text_tokens("gpt-4o") + 765, 100))


def test_a_conversation_sends_its_attachments_with_every_turn() -> None:
    from dataclasses import replace

    estimator = Estimator(Pricing())
    talk = replace(request("gpt-4o", [image_part(0)], [image(1024, 1024)]), type="conversation", turns=("a", "b", "c"))
    bare = estimator.bound(replace(talk, attachments=(), body={**talk.body, "messages": []}))
    bound = estimator.bound(talk)
    assert bound.prompt.tokens == bare.prompt.tokens + 3 * 765 and bound.images == 3 * 765


def test_an_audio_attachments_worst_case_covers_its_audio_tokens() -> None:
    heard = {"type": "input_audio", "input_audio": {"data": marker(0), "format": "wav"}}
    call = Attachment("audio", "/p/c.wav", "audio/wav", size=len(silent_wav(4)), seconds=4.0)
    asked = request("gpt-audio", [heard], [call])
    # billed: the text, 4 s at 10 audio tokens a second at $32, and an answer of up to 100 tokens at $10
    bill = (text_tokens("gpt-audio") * 2.5 + 40 * 32 + 100 * 10) / M
    worst = Estimator(Pricing()).worst_cost(asked)
    assert worst is not None and worst >= bill
    text = Counter().messages("gpt-audio", [{"role": "user", "content": ASK["text"]}])
    prompt = text.tokens * 3 // 2 if text.approximate else text.tokens  # the budget's margin for a guessed count
    assert worst == pytest.approx((prompt * 2.5 + 60 * 32 + 100 * 10) / M)  # 4 s x 10 a second, half again
