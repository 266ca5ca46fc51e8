"""PostgreSQL's data folder outside the state folder: a predictable name under /var/tmp, so
it is only ever used when it is a private folder of the user who runs the stack."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from devenv.backends.base import InfraError
from devenv.backends.native.postgres import own_private_folder, refuse_earlier_data


def test_a_new_folder_is_made_traversable_not_listable(tmp_path: Path) -> None:
    folder = tmp_path / "platform-devenv-x"
    own_private_folder(folder)
    assert folder.stat().st_mode & 0o777 == 0o711
    own_private_folder(folder)  # ours: accepted again


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")
def test_a_folder_another_user_made_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "platform-devenv-x"
    folder.mkdir(mode=0o711)
    os.chown(folder, pwd.getpwnam("nobody").pw_uid, -1)
    with pytest.raises(InfraError, match="not a private folder of yours"):
        own_private_folder(folder)


def test_a_folder_others_can_write_to_or_a_symlink_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(InfraError, match="not a private folder of yours"):
        own_private_folder(shared)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(InfraError, match="not a private folder of yours"):
        own_private_folder(link)


def test_data_of_an_earlier_version_is_refused_with_the_way_out(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "PG_VERSION").write_text("15\n")
    (data / "pg_hba.conf").write_text(
        "# TYPE DATABASE USER ADDRESS METHOD\n"
        "local all all trust\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
    )
    with pytest.raises(InfraError, match=r"earlier version .* `inv clean --yes` removes it"):
        refuse_earlier_data(data)
    (data / "pg_hba.conf").write_text("# trust (a comment)\nlocal all all scram-sha-256\n")
    refuse_earlier_data(data)  # today's data: served
