"""Every endpoint users batch, and every way they reach the API, end to end through the CLI."""

from __future__ import annotations

import csv
import json
import struct
from pathlib import Path

import pandas as pd
import pytest
from conftest import SECRET, chat_job, faults
from proxy import ForwardingProxy

from batchgpt.estimate import estimate
from batchgpt.jobs import load
from batchgpt.mock import Config, MockServer
from batchgpt.mock.answers import silent_wav, vector_for
from batchgpt.tokens import Counter


def rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open(encoding="utf-8")))


def job(tasks: list[dict], **extra) -> dict:
    return {"name": "t", "limits": {"concurrency": 4, "timeout": 5}, "tasks": tasks, **extra}


def test_embeddings_are_packed_and_split_back_per_item(cli, server, write_job, tmp_path):
    texts = [f"document number {i} about {'cats' if i % 2 else 'dogs'}" for i in range(10)]
    path = write_job(
        job(
            [
                {
                    "type": "embedding",
                    "dimensions": 64,
                    "batch_size": 4,
                    "items": [{"id": f"d{i}", "text": t} for i, t in enumerate(texts)],
                }
            ],
            output={"results": "out/r.parquet"},
        )
    )
    result = cli("run", str(path))
    assert result.exit_code == 0, result.output
    assert sorted((len(s.body["input"]) for s in server.seen), reverse=True) == [4, 4, 2]
    assert all(s.body["model"] == "text-embedding-3-small" and s.body["dimensions"] == 64 for s in server.seen)
    frame = pd.read_parquet(tmp_path / "out" / "r.parquet")
    assert frame["id"].tolist() == [f"d{i}" for i in range(10)]
    for text, vector in zip(texts, frame["vector"], strict=True):
        assert list(vector) == list(struct.unpack("64f", vector_for(text, 64)))
    counter = Counter()
    assert frame["prompt_tokens"].sum() == sum(counter.text("text-embedding-3-small", t).tokens for t in texts)
    assert frame["cost_usd"].sum() == pytest.approx(frame["prompt_tokens"].sum() * 0.02 / 1e6)
    report = rows(tmp_path / "out" / "t-report.csv")
    assert report[-1]["requests"] == "10" and float(report[-1]["cost_usd"]) > 0


def test_embeddings_in_csv_are_json_arrays_and_a_failed_pack_fails_only_its_items(cli, server, write_job, tmp_path):
    texts = ["fine one", "fine two", "BAD three", "fine four"]
    path = write_job(
        job(
            [{"type": "embedding", "batch_size": 2, "items": [{"id": f"d{i}", "text": t} for i, t in enumerate(texts)]}]
        )
    )
    faults(server, "400:match=BAD")
    result = cli("run", str(path))
    assert result.exit_code == 1
    out = rows(tmp_path / "out" / "t.csv")
    assert [r["status"] for r in out] == ["ok", "ok", "error", "error"]
    assert json.loads(out[0]["output"]) == list(struct.unpack("1536f", vector_for("fine one", 1536)))


def test_an_input_over_the_embedding_limit_goes_alone(cli, server, write_job, tmp_path):
    huge = "word " * 9000
    path = write_job(
        job(
            [
                {
                    "type": "embedding",
                    "items": [
                        {"id": "a", "text": "short"},
                        {"id": "b", "text": huge},
                        {"id": "c", "text": "also short"},
                    ],
                }
            ]
        )
    )
    result = cli("run", str(path))
    assert result.exit_code == 1
    assert [r["status"] for r in rows(tmp_path / "out" / "t.csv")] == ["ok", "error", "ok"]
    assert sorted(len(s.body["input"]) if isinstance(s.body["input"], list) else 1 for s in server.seen) == [1, 2]


def test_moderation_says_what_was_flagged_with_scores_and_costs_nothing(cli, server, write_job, tmp_path):
    path = write_job(
        job(
            [
                {
                    "type": "moderation",
                    "items": [
                        {"id": "a", "text": "have a nice day"},
                        {"id": "b", "text": "I will kill you, I hate you"},
                    ],
                }
            ]
        )
    )
    result = cli("run", str(path))
    assert result.exit_code == 0, result.output
    assert "no price" not in result.stderr
    a, b = rows(tmp_path / "out" / "t.csv")
    assert a["output"] == "not flagged" and b["output"] == "flagged: hate, violence"
    details = json.loads(b["details"])
    assert (
        details["flagged"] and details["categories"] == ["hate", "violence"] and details["scores"]["violence"] == 0.97
    )
    assert (
        float(a["cost_usd"]) == 0
        and len(server.seen) == 1
        and server.seen[0].body["input"] == ["have a nice day", "I will kill you, I hate you"]
    )


def test_images_are_saved_as_files_or_kept_as_urls_and_priced_per_image(cli, server, write_job, tmp_path):
    path = write_job(
        job(
            [
                {
                    "type": "image",
                    "name": "files",
                    "model": "dall-e-3",
                    "size": "1792x1024",
                    "quality": "hd",
                    "response_format": "b64_json",
                    "items": [{"id": "cat/1", "prompt": "a cat"}],
                },
                {
                    "type": "image",
                    "name": "links",
                    "model": "dall-e-2",
                    "size": "512x512",
                    "n": 2,
                    "items": [{"id": "dog", "prompt": "a dog"}],
                },
            ]
        )
    )
    result = cli("run", str(path))
    assert result.exit_code == 0, result.output
    saved, linked = rows(tmp_path / "out" / "t.csv")
    image = Path(saved["output"])
    assert image.parent == tmp_path / "out" / "t-media"
    assert image.name.startswith("cat_1-") and image.suffix == ".png"  # a readable slug, then the id's hash
    assert image.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert float(saved["cost_usd"]) == pytest.approx(0.12)
    assert json.loads(saved["details"])["revised_prompt"][0].endswith("a cat")
    urls = json.loads(linked["output"])
    assert len(urls) == 2 and all(u.startswith("https://images.mock.invalid/") for u in urls)
    assert float(linked["cost_usd"]) == pytest.approx(2 * 0.018)
    assert {
        "model": "dall-e-3",
        "prompt": "a cat",
        "size": "1792x1024",
        "quality": "hd",
        "response_format": "b64_json",
    } in [s.body for s in server.seen]


def test_gpt_image_answers_are_priced_by_their_token_usage(cli, server, write_job, tmp_path):
    path = write_job(job([{"type": "image", "model": "gpt-image-1", "quality": "low", "items": [{"prompt": "a fox"}]}]))
    assert cli("run", str(path)).exit_code == 0
    [row] = rows(tmp_path / "out" / "t.csv")
    assert int(row["completion_tokens"]) == 272
    assert float(row["cost_usd"]) == pytest.approx((int(row["prompt_tokens"]) * 5 + 272 * 40) / 1e6)


def test_speech_is_saved_as_audio_files_and_priced_per_character(cli, server, write_job, tmp_path):
    text = "The library closes at six o'clock today."
    path = write_job(
        job(
            [
                {
                    "type": "speech",
                    "voice": "nova",
                    "format": "wav",
                    "speed": 1.5,
                    "items": [{"id": "notice", "text": text}],
                }
            ]
        )
    )
    assert cli("run", str(path)).exit_code == 0
    [row] = rows(tmp_path / "out" / "t.csv")
    audio = Path(row["output"])
    assert audio.name.startswith("notice-") and audio.suffix == ".wav" and audio.read_bytes()[:4] == b"RIFF"
    assert float(row["cost_usd"]) == pytest.approx(len(text) * 15 / 1e6)
    assert server.seen[0].body == {
        "model": "tts-1",
        "input": text,
        "voice": "nova",
        "response_format": "wav",
        "speed": 1.5,
    }


def test_transcriptions_upload_the_file_and_a_changed_file_is_sent_again(cli, server, write_job, tmp_path):
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "call.wav").write_bytes(silent_wav(30))
    (tmp_path / "audio" / "memo.mp3").write_bytes(b"not really mp3 " * 100)
    spec = job(
        [
            {
                "type": "transcription",
                "language": "en",
                "items": [
                    {"id": "call", "file": "audio/call.wav"},
                    {"id": "memo", "file": "audio/memo.mp3", "response_format": "text"},
                ],
            }
        ]
    )
    path = write_job(spec)
    result = cli("run", str(path))
    assert result.exit_code == 0, result.output
    call, memo = rows(tmp_path / "out" / "t.csv")
    assert call["output"] == f"Transcript of call.wav ({len(silent_wav(30))} bytes) in en"
    assert float(call["cost_usd"]) == pytest.approx(0.5 * 0.006)  # 30 s of WAV, read locally
    assert memo["output"].startswith("Transcript of memo.mp3")
    # its length is in no header: priced high (1,500 bytes at 6 kbit/s, 750 bytes a second), and said so
    assert float(memo["cost_usd"]) == pytest.approx(1500 / 750 / 60 * 0.006)
    assert "not readable from its headers" in result.stderr
    uploads = {s.body["_file"][0]: s.body for s in server.seen}
    assert uploads["call.wav"]["language"] == "en" and uploads["call.wav"]["_file"][1] == silent_wav(30)
    assert uploads["memo.mp3"]["response_format"] == "text"
    (tmp_path / "audio" / "memo.mp3").write_bytes(b"a new recording " * 100)
    assert cli("run", str(path)).exit_code == 0
    assert sorted(s.body["_file"][0] for s in server.seen) == ["call.wav", "memo.mp3", "memo.mp3"]
    assert server.seen[-1].body["_file"][1] == b"a new recording " * 100


def test_a_missing_audio_file_is_a_validation_error(cli, server, write_job):
    path = write_job(job([{"type": "transcription", "items": [{"file": "nowhere.wav"}]}]))
    result = cli("run", str(path))
    assert result.exit_code == 2 and "no such file: nowhere.wav" in result.stderr and server.seen == []


def test_a_gateway_header_and_organization_are_sent(cli, server, write_job):
    path = write_job(
        chat_job(
            ["a"],
            provider={
                "headers": {"cf-aig-authorization": "Bearer gw-token"},
                "organization": "org-1",
                "project": "proj-1",
            },
        )
    )
    assert cli("run", str(path)).exit_code == 0
    headers = server.seen[0].headers
    assert headers["cf-aig-authorization"] == "Bearer gw-token"
    assert headers["openai-organization"] == "org-1" and headers["openai-project"] == "proj-1"


def test_requests_go_through_an_http_proxy(cli, server, write_job, tmp_path, monkeypatch):
    proxy = ForwardingProxy().start()
    try:
        path = write_job(chat_job(["via proxy"], provider={"proxy": proxy.url}))
        assert cli("run", str(path)).exit_code == 0
        assert proxy.seen == [f"{server.base_url}/chat/completions"]
        assert rows(tmp_path / "out" / "t.csv")[0]["output"] == "Echo: via proxy"
        # the usual variables work too, and NO_PROXY exempts a host
        path = write_job(chat_job(["via env"]))
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        assert cli("run", str(path), "--fresh").exit_code == 0
        assert len(proxy.seen) == 2
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert cli("run", str(path), "--fresh").exit_code == 0
        assert len(proxy.seen) == 2
    finally:
        proxy.stop()


def test_azure_deployment_urls_and_the_api_key_header(cli, server, write_job, tmp_path):
    root = server.base_url[: -len("/v1")]
    path = write_job(
        chat_job(
            ["hello azure"],
            defaults={"model": "my-gpt4o-deployment"},
            provider={"kind": "azure", "base_url": root, "api_version": "2024-10-21"},
        )
    )
    result = cli("run", str(path), base_url=False)
    assert result.exit_code == 0, result.output
    [seen] = server.seen
    assert seen.path == "/openai/deployments/my-gpt4o-deployment/chat/completions"
    assert seen.headers["api-key"] == SECRET and "authorization" not in seen.headers


def test_one_job_can_use_two_endpoints(cli, server, write_job, tmp_path):
    other = MockServer(Config(api_key=SECRET)).start()
    try:
        spec = chat_job(["first"])
        spec["tasks"].append(
            {
                "type": "chat",
                "name": "elsewhere",
                "provider": {"base_url": other.base_url},
                "items": [{"id": "x", "prompt": "second"}],
            }
        )
        assert cli("run", str(write_job(spec))).exit_code == 0
        assert [s.body["messages"][-1]["content"] for s in other.seen] == ["second"]
        assert [s.body["messages"][-1]["content"] for s in server.seen] == ["first"]
    finally:
        other.stop()


def test_balance_from_the_billing_routes(cli, server, monkeypatch):
    server.config.billing = (120.0, 30.5)
    result = cli("balance", "--base-url", server.base_url)
    assert result.exit_code == 0
    assert "limit $120.00, used $30.50, remaining $89.50" in result.stdout
    server.config.billing = None
    result = cli("balance", "--base-url", server.base_url)
    assert result.exit_code == 1 and "does not expose its balance" in result.stderr


def test_estimates_price_every_endpoint_by_what_it_bills(write_job, tmp_path):
    (tmp_path / "call.wav").write_bytes(silent_wav(120))
    table = estimate(
        load(
            write_job(
                job(
                    [
                        {"type": "embedding", "items": [{"text": "hello world"}] * 3},
                        {"type": "moderation", "items": [{"text": "x"}]},
                        {
                            "type": "image",
                            "model": "dall-e-3",
                            "quality": "hd",
                            "size": "1024x1024",
                            "items": [{"prompt": "p"}] * 2,
                        },
                        {"type": "speech", "items": [{"text": "x" * 1000}]},
                        {"type": "transcription", "items": [{"file": "call.wav"}]},
                    ]
                )
            )
        )
    )
    by_type = {row["task"]: row for row in table}
    assert by_type["embedding"]["prompt_tokens"] == 3 * Counter().text("text-embedding-3-small", "hello world").tokens
    assert by_type["embedding"]["cost_usd_max"] == pytest.approx(by_type["embedding"]["prompt_tokens"] * 0.02 / 1e6)
    assert by_type["moderation"]["cost_usd_max"] == 0
    assert by_type["image"]["cost_usd_max"] == pytest.approx(2 * 0.08)
    assert by_type["speech"]["cost_usd_max"] == pytest.approx(1000 * 15 / 1e6)
    assert by_type["transcription"]["cost_usd_max"] == pytest.approx(2 * 0.006)
    assert by_type["TOTAL"]["cost_usd_max"] == pytest.approx(
        sum(by_type[k]["cost_usd_max"] for k in ("embedding", "moderation", "image", "speech", "transcription"))
    )


def test_a_balance_that_is_no_number_is_not_shown_as_one(cli, server):
    server.config.billing = (float("nan"), 0.0)
    result = cli("balance", "--base-url", server.base_url)
    assert result.exit_code == 1 and "$nan" not in result.output and "no JSON" in result.output


def test_batch_size_is_a_tasks_setting_and_an_item_that_sets_it_is_told_so(cli, write_job):
    # It was accepted on an item and silently ignored: the item still packed 256 at a time.
    job = write_job({"tasks": [{"type": "embedding", "batch_size": 8, "items": [{"text": "a", "batch_size": 1}]}]})
    result = cli("validate", str(job))
    assert result.exit_code == 2 and "batch_size" in result.stderr and "/tasks/0/items/0" in result.stderr
