"""Atomic writes and the folder write probe: what is on disk after success, failure, a kill."""

import os
import re
import stat

import pytest

from xraykit import files


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_replaces_the_file_with_ordinary_permissions(tmp_path):
    target = tmp_path / "labels.csv"
    target.write_text("old\n")
    with files.atomic_write(target, "w", encoding="utf-8") as handle:
        handle.write("image,p\nx.png,1\n")
        assert target.read_text() == "old\n"  # nothing under the final name until the end
        temporary = [p for p in tmp_path.iterdir() if p != target]
        assert [p.name for p in temporary] and temporary[0].name.startswith(".labels.csv.")
        assert temporary[0].name.endswith(".part")
    assert target.read_text() == "image,p\nx.png,1\n" and _names(tmp_path) == ["labels.csv"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not tempfile's 0o600


@pytest.mark.parametrize("error", [ValueError("checksum"), KeyboardInterrupt()])
def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_nothing(tmp_path, error):
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    with pytest.raises(type(error)):
        with files.atomic_write(target) as handle:
            handle.write(b"half a file")
            raise error
    assert target.read_bytes() == b"old" and _names(tmp_path) == ["data.bin"]


def test_atomic_files_moves_a_set_in_order_or_not_at_all(tmp_path):
    model, record = tmp_path / "best.keras", tmp_path / "best.json"
    with files.atomic_files(model, record, suffix=".part.keras") as (tmp_model, tmp_record):
        assert tmp_model.name.endswith(".part.keras") and tmp_model.parent == tmp_path
        tmp_model.write_bytes(b"model")
        tmp_record.write_text("record")
    assert (model.read_bytes(), record.read_text()) == (b"model", "record")
    assert _names(tmp_path) == ["best.json", "best.keras"]

    with pytest.raises(OSError, match="disk full"):
        with files.atomic_files(model, record) as (tmp_model, tmp_record):
            tmp_model.write_bytes(b"new model")
            raise OSError("disk full")
    assert (model.read_bytes(), record.read_text()) == (b"model", "record")
    assert _names(tmp_path) == ["best.json", "best.keras"]


def test_a_set_interrupted_after_its_first_move_leaves_the_rest_to_finish(tmp_path):
    model, blocked = tmp_path / "best.keras", tmp_path / "best.json"
    blocked.mkdir()
    (blocked / "inside").write_text("a folder where the record should go")
    temporaries = (tmp_path / "best.partial.keras", tmp_path / "best.json.partial")
    with pytest.raises(OSError):
        with files.atomic_files(model, blocked, temporaries=temporaries) as (tmp_model, tmp_record):
            tmp_model.write_bytes(b"model")
            tmp_record.write_text("record")
    assert model.read_bytes() == b"model"  # moved into place first
    assert temporaries[1].read_text() == "record"  # kept, so that the caller can finish the set
    with pytest.raises(ValueError, match="one temporary path per final path"):
        with files.atomic_files(model, blocked, temporaries=temporaries[:1]):
            pass


def test_check_writable_creates_folders_and_names_the_problem(tmp_path):
    deep = tmp_path / "a" / "b"
    assert files.check_writable(deep, "run_dir", "pass another folder") == deep and deep.is_dir()
    a_file = tmp_path / "run.txt"
    a_file.write_text("not a folder")
    with pytest.raises(NotADirectoryError, match=re.escape(f"run_dir {a_file} is a file")):
        files.check_writable(a_file, "run_dir", "pass another folder")
    with pytest.raises(PermissionError, match=r"cannot be created or written .*: set X"):
        files.check_writable(a_file / "sub", "download cache", "set X", error=PermissionError)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root ignores folder permissions")
def test_check_writable_refuses_a_read_only_folder(tmp_path):
    read_only = tmp_path / "read-only"
    read_only.mkdir(mode=0o555)
    try:
        with pytest.raises(PermissionError, match=re.escape(f"cache {read_only} cannot be")):
            files.check_writable(read_only, "cache", "choose another")
    finally:
        read_only.chmod(0o755)


def test_file_checksum(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"abc")
    assert files.file_checksum(path) == "900150983cd24fb0d6963f7d28e17f72"
    assert files.file_checksum(path, "sha256").startswith("ba7816bf")
