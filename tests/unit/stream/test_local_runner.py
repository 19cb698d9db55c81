"""The local runner's bookkeeping: which checkpoint a start resumes from."""

from __future__ import annotations

import os

from fp_flink.local import latest_checkpoint


def _meta(path, mtime):
    path.mkdir(parents=True)
    (path / "_metadata").write_bytes(b"x")
    os.utime(path / "_metadata", (mtime, mtime))


def test_resumes_from_the_newest_checkpoint_or_savepoint(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    _meta(tmp_path / "checkpoints" / "job1" / "chk-3", 100)
    _meta(tmp_path / "checkpoints" / "job2" / "chk-1", 200)
    (tmp_path / "checkpoints" / "job2" / "chk-2").mkdir()  # incomplete: no _metadata
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoints" / "job2" / "chk-1"
    _meta(tmp_path / "savepoints" / "savepoint-abc", 300)
    assert latest_checkpoint(tmp_path) == tmp_path / "savepoints" / "savepoint-abc"
