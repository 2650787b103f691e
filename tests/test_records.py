"""The run record: one type, written and read in one place, that reads every committed record as it is."""

from __future__ import annotations

import json

import pytest

from conftest import REPO
from gvae_bench.execution.records import RecordError, RunRecord, RunStatus, read_record, write_record

COMMITTED = sorted((REPO / "results").glob("**/runs/**/record.json"))


def test_every_committed_record_reads_and_writes_back_unchanged(tmp_path):
    assert len(COMMITTED) >= 81
    for path in COMMITTED:
        data = json.loads(path.read_text())
        record = read_record(path.parent)
        assert isinstance(record.status, RunStatus)
        assert record.to_json() == data, path
        write_record(tmp_path, record)
        assert json.loads((tmp_path / "record.json").read_text()) == data


def test_fields_a_newer_harness_added_are_kept():
    data = {"status": "finished", "model": "m", "benchmark": "b", "profile": "p", "seed": 3, "config_hash": "h",
            "added_later": {"x": 1}}
    record = RunRecord.from_json(data)
    assert record.extra == {"added_later": {"x": 1}} and record.to_json()["added_later"] == {"x": 1}
    assert record.status == RunStatus.FINISHED and record.is_final


@pytest.mark.parametrize("text, message", [
    ("", "not valid JSON"),
    ('{"status": "finished", "model"', "not valid JSON"),
    ("[1, 2]", "a run record is a JSON object, found list"),
    ('{"status": "finished"}', "the run record lacks model, benchmark, profile, seed, config_hash"),
    ('{"status": "done", "model": "m", "benchmark": "b", "profile": "p", "seed": 0, "config_hash": "h"}',
     "unknown status 'done'"),
    (b"\xff\xfe\x00", "not valid JSON"),
])
def test_an_unreadable_record_is_a_record_error_naming_the_file(tmp_path, text, message):
    path = tmp_path / "record.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(RecordError, match=message) as info:
        read_record(tmp_path)
    assert str(path) in str(info.value)
