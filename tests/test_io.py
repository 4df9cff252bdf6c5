"""File helpers and the CLI error boundary's messages."""

import pytest
import torch

from gan_probe.cli import _os_error_message, _user_message
from gan_probe.errors import GanProbeError
from gan_probe.io import atomic_path, atomic_write_text, check_writable


def test_atomic_write_keeps_the_old_file_when_the_body_fails(tmp_path):
    target = tmp_path / "a.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_write_errors_name_the_users_path(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(GanProbeError, match="is a folder"):
        atomic_write_text(tmp_path / "folder", "x")
    (tmp_path / "file").write_text("")
    with pytest.raises(GanProbeError, match="cannot write .*file/out.html") as e:
        atomic_write_text(tmp_path / "file" / "out.html", "x")
    assert ".tmp" not in str(e.value)
    with pytest.raises(GanProbeError, match="not a writable folder"):
        check_writable(tmp_path / "file" / "stats.npz")
    assert check_writable(tmp_path / "new" / "stats.npz").name == "stats.npz"


def test_error_raised_in_a_dataloader_worker_is_one_line():
    class Bad(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            raise GanProbeError("cannot read image x/bad.png (UnidentifiedImageError)")

    loader = torch.utils.data.DataLoader(Bad(), batch_size=2, num_workers=1)
    with pytest.raises(GanProbeError) as e:
        next(iter(loader))
    assert "Traceback" in str(e.value)  # what torch hands back
    assert _user_message(e.value) == "cannot read image x/bad.png (UnidentifiedImageError)"
    assert _user_message(GanProbeError("plain")) == "plain"


def test_os_errors_read_as_sentences():
    assert "exists and is not a folder" in _os_error_message(FileExistsError(17, "File exists", "afile"))
    assert "part of this path is a file" in _os_error_message(NotADirectoryError(20, "Not a directory", "a/b"))
    assert _os_error_message(PermissionError(13, "Permission denied", "/x")) == "Permission denied: /x"
