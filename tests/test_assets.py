"""assets-local: the project's assets copied from a local copy of the datasets."""

import hashlib

import pytest
import srsly

from spacy_jmt.assets import copy_local_assets


def test_files_and_folders_are_copied_and_checked(tmp_path):
    local = tmp_path / "data"
    (local / "gap").mkdir(parents=True)
    (local / "gap" / "dev.tsv").write_text("ID\tText\n", encoding="utf8")
    (local / "litbank" / "conll").mkdir(parents=True)
    (local / "litbank" / "conll" / "a.conll").write_text("#begin document (a)\n", encoding="utf8")
    md5 = hashlib.md5(b"ID\tText\n").hexdigest()
    project = tmp_path / "project"
    project.mkdir()
    assets = [
        {"dest": "assets/gap/dev.tsv", "url": "https://example.org/dev.tsv", "checksum": md5},
        {"dest": "assets/litbank/conll", "git": {"repo": "r", "branch": "main", "path": "c"}},
        {"dest": "assets/gap/test.tsv", "url": "https://example.org/test.tsv", "optional": True},
    ]
    srsly.write_yaml(project / "project.yml", {"title": "t", "assets": assets})
    report = dict(copy_local_assets(project, local))
    assert report == {
        "assets/gap/dev.tsv": "copied",
        "assets/litbank/conll": "copied",
        "assets/gap/test.tsv": "missing",
    }
    assert (
        (project / "assets/litbank/conll/a.conll").read_text(encoding="utf8").startswith("#begin")
    )
    assert dict(copy_local_assets(project, local))["assets/litbank/conll"] == "present"
    (project / "assets/gap/dev.tsv").unlink()
    (local / "gap" / "dev.tsv").write_text("changed\n", encoding="utf8")
    with pytest.raises(ValueError, match="Checksum mismatch"):
        copy_local_assets(project, local)
