"""`keep:`: item fields copied into every result row, for joining results back to the data."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import chat_job, faults

from batchgpt.batch import EXIT_SUBMITTED
from batchgpt.tablefiles import RESULT_COLUMNS


def test_kept_csv_columns_land_in_parquet_beside_each_answer(cli, server, write_job, tmp_path):
    (tmp_path / "items.csv").write_text("id,text,sku,price\na1,Red shoe,SKU-1,19.5\na2,Blue hat,SKU-2,7\n")
    path = write_job(
        {
            "name": "t",
            "defaults": {"model": "gpt-4o-mini"},
            "output": {"results": "out/t.parquet"},
            "tasks": [
                {"type": "translate", "target_lang": "French", "items_from": "items.csv", "keep": ["sku", "price"]}
            ],
        }
    )
    result = cli("run", str(path))
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(tmp_path / "out" / "t.parquet")
    assert list(frame.columns[-2:]) == ["sku", "price"]
    assert frame[["id", "sku", "price"]].values.tolist() == [["a1", "SKU-1", "19.5"], ["a2", "SKU-2", "7"]]
    assert frame["output"].tolist() == ["Echo: Red shoe", "Echo: Blue hat"]


def test_keep_all_copies_every_field_with_its_type(cli, server, write_job, tmp_path):
    lines = [
        {"id": "x", "prompt": "one", "qty": 3, "ok": True, "tags": ["a"]},
        {"id": "y", "prompt": "two", "qty": 4, "ok": False, "tags": "b"},
    ]
    (tmp_path / "items.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    job = chat_job([], output={"results": "out/t.parquet"})
    job["tasks"] = [{"type": "chat", "items_from": "items.jsonl", "keep": "all"}]
    result = cli("run", str(write_job(job)))
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(tmp_path / "out" / "t.parquet")
    assert list(frame.columns[-4:]) == ["prompt", "qty", "ok", "tags"]
    assert frame["qty"].dtype == "int64" and frame["ok"].dtype == "bool"
    assert frame["tags"].tolist() == ['["a"]', '"b"']  # values of several types: JSON text


def test_kept_fields_come_back_from_batch_mode_too(cli, server, write_job, tmp_path):
    job = chat_job(["one"], mode="batch")
    job["tasks"][0]["items"][0]["sku"] = "SKU-9"
    job["tasks"][0]["keep"] = ["sku"]
    path = write_job(job)
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    assert cli("run", str(path)).exit_code == 0
    frame = pd.read_csv(tmp_path / "out" / "t.csv")
    assert frame["sku"].tolist() == ["SKU-9"] and frame["mode"].tolist() == ["batch"]


def test_a_kept_name_that_is_a_result_column_is_refused_at_its_line(cli, write_job, tmp_path):
    job = chat_job(["one"])
    job["tasks"][0]["keep"] = ["sku", "status"]
    job["tasks"][0]["items"][0]["sku"] = "s"
    result = cli("validate", str(write_job(job)))
    assert result.exit_code == 2
    assert "keep: 'status' is a result column already" in result.output and "(at /tasks/0/keep/1)" in result.output


def test_keep_all_refuses_an_item_field_named_like_a_result_column(cli, write_job, tmp_path):
    (tmp_path / "items.jsonl").write_text('{"id": "x", "prompt": "p", "cost_usd": 3}\n')
    job = chat_job([])
    job["tasks"] = [{"type": "chat", "items_from": "items.jsonl", "keep": "all"}]
    result = cli("validate", str(write_job(job)))
    assert result.exit_code == 2 and "items.jsonl:1: keep: all would copy 'cost_usd'" in result.output


def test_a_kept_field_an_item_lacks_is_an_empty_cell(cli, server, write_job, tmp_path):
    (tmp_path / "items.csv").write_text("id,text,name,score\na,hi,Ann,3\nb,bye,,\n")  # CSV drops empty cells
    job = chat_job([])
    job["tasks"] = [
        {"type": "translate", "target_lang": "French", "items_from": "items.csv", "keep": ["name", "score"]}
    ]
    result = cli("run", str(write_job(job)))
    assert result.exit_code == 0, result.output  # `name` is a field the schema knows elsewhere: still kept
    frame = pd.read_csv(tmp_path / "out" / "t.csv")
    assert frame["name"].tolist()[0] == "Ann" and pd.isna(frame["name"].iloc[1]) and pd.isna(frame["score"].iloc[1])


def test_kept_yaml_fields_leave_the_tasks_own_options_valid(cli, write_job):
    job = chat_job([])
    job["tasks"] = [
        {
            "type": "chat",
            "system": "Be brief.",
            "temperature": 0,
            "keep": ["src"],
            "items": [{"prompt": "x", "src": "a"}],
        }
    ]
    result = cli("validate", str(write_job(job)))
    assert result.exit_code == 0, result.output


SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "price": {"type": "number"}},
    "required": ["name", "price"],
    "additionalProperties": False,
}
ORDER = [*RESULT_COLUMNS, "name", "price", "sku", "zone"]  # results, the answer's fields, the kept ones


def _columns(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        return [c for c in pd.read_parquet(path).columns if c != "vector"]
    if path.suffix == ".jsonl":
        return list(json.loads(path.read_text("utf-8").splitlines()[0]))
    return list(pd.read_csv(path).columns)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_kept_fields_follow_the_answers_columns_in_every_format_and_rerun(cli, server, write_job, tmp_path, suffix):
    """Results columns, then the schema's fields, then the kept ones: they came interleaved, in the
    order each name first appeared, so kept ones led when the first item had no answer yet (issue 28,
    item 7)."""
    faults(server, "refusal:match=REFUSE")
    job = chat_job(["REFUSE at first", "Blue hat"], output={"results": f"out/t{suffix}"})
    for n, item in enumerate(job["tasks"][0]["items"]):
        item.update(sku=f"S{n}", zone="eu")
    job["tasks"][0].update(schema=SCHEMA, columns=True, keep=["sku", "zone"])
    path = write_job(job)
    assert cli("run", str(path)).exit_code == 1  # the first item refused: no answer fields on it
    assert _columns(tmp_path / "out" / f"t{suffix}") == ORDER
    faults(server)
    job["tasks"][0]["items"][0]["prompt"] = "Red shoe"  # a new request for the first item: answered now
    assert cli("run", str(write_job(job))).exit_code == 0
    results = tmp_path / "out" / f"t{suffix}"
    assert _columns(results) == ORDER
    if suffix == ".csv":
        frame = pd.read_csv(results)
        assert frame[["sku", "name"]].values.tolist() == [["S0", "Echo: Red shoe"], ["S1", "Echo: Blue hat"]]


def test_a_csv_with_chinese_headers_drives_templates_ids_and_keep(cli, server, write_job, tmp_path):
    """A spreadsheet from Chinese Excel names its columns in Chinese: {问题} and id_column: 单号 work
    as {question} does (they were refused as "not a plain field name", once per row)."""
    (tmp_path / "工单.csv").write_text("单号,问题,渠道\nT-1,退货怎么办,邮件\nT-2,发票在哪里,电话\n", encoding="utf-8")
    path = write_job(
        {
            "name": "t",
            "defaults": {"model": "gpt-4o-mini"},
            "output": {"results": "out/t.csv"},
            "tasks": [
                {
                    "type": "chat",
                    "items_from": "工单.csv",
                    "id_column": "单号",
                    "template": "请回答：{问题}",
                    "keep": ["渠道"],
                }
            ],
        }
    )
    assert cli("validate", str(path)).exit_code == 0
    result = cli("run", str(path))
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "out" / "t.csv")
    assert frame[["id", "渠道"]].values.tolist() == [["T-1", "邮件"], ["T-2", "电话"]]
    assert frame["output"].tolist() == ["Echo: 请回答：退货怎么办", "Echo: 请回答：发票在哪里"]


def test_a_template_field_may_not_start_with_a_digit_in_any_script(write_job, cli):
    path = write_job(
        {"defaults": {"model": "gpt-4o-mini"}, "tasks": [{"type": "chat", "template": "{1号}", "items": [{"x": 1}]}]}
    )
    result = cli("validate", str(path))
    assert result.exit_code == 2
    assert "{1号} must be a plain field name" in result.output
