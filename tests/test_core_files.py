import gzip

import pytest

from core.files import atomic_path, atomic_write_json
from warehouse.landing import write_jsonl


def test_atomic_path_replaces_the_file_only_when_the_block_succeeds(tmp_path):
    target = tmp_path / "pointer.json"
    atomic_write_json(target, {"current": "a"})
    with pytest.raises(RuntimeError, match="crash"), atomic_path(target) as tmp:
        tmp.write_text('{"current": "half')
        raise RuntimeError("crash while writing")
    assert target.read_text() == '{\n  "current": "a"\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["pointer.json"]  # no temporary file left


def test_write_jsonl_writes_through_the_one_atomic_helper(tmp_path):
    target = tmp_path / "2011-03-14" / "shop.jsonl.gz"
    assert write_jsonl(target, [{"a": 1}, b'{"b":2}']) == 2
    assert gzip.decompress(target.read_bytes()) == b'{"a":1}\n{"b":2}\n'
    assert [p.name for p in target.parent.iterdir()] == ["shop.jsonl.gz"]
