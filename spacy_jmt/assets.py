"""Fill a spaCy project's assets from a local copy of the datasets instead of the network.

The project's `assets` section names each file's upstream URL (for `spacy project assets`);
where a directory with the same datasets exists (on these machines `../shared/data`), the
files are copied from it and checked against the project's checksums.
"""

import gzip
import hashlib
import shutil
from pathlib import Path
from typing import List, Tuple

import srsly


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def copy_local_assets(
    project_dir: Path, local_dir: Path, include_optional: bool = True
) -> List[Tuple[str, str]]:
    """Copy every asset of project.yml that `local_dir` holds to its `dest`.

    An asset `assets/<dataset>/<file>` is looked up as `<local_dir>/<dataset>/<file>`; for a
    `.gz` dest the uncompressed file is accepted too and compressed on the way. A folder
    (a `git` asset, e.g. LitBank's documents) is copied whole.
    project_dir (Path): The directory with project.yml.
    local_dir (Path): The local copy of the datasets.
    include_optional (bool): Also copy assets marked `optional: true` (e.g. test splits).
    RETURNS (List[Tuple[str, str]]): (dest, what happened) per asset: "copied", "present",
        "missing" (not in local_dir; fetch it with `spacy project assets`).
    """
    project = srsly.read_yaml(project_dir / "project.yml")
    report = []
    for asset in project.get("assets", []):
        if asset.get("optional") and not include_optional:
            continue
        dest = project_dir / asset["dest"]
        rel = Path(asset["dest"]).relative_to("assets")
        source = local_dir / rel
        if not source.exists() and rel.suffix == ".gz":
            source = local_dir / rel.with_suffix("")
        if dest.exists():
            report.append((asset["dest"], "present"))
            continue
        if not source.exists():
            report.append((asset["dest"], "missing"))
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():  # a git asset (a folder of the upstream repository)
            shutil.copytree(source, dest)
        elif source.suffix != dest.suffix and dest.suffix == ".gz":
            dest.write_bytes(gzip.compress(source.read_bytes(), mtime=0))
        else:
            shutil.copyfile(source, dest)
        checksum = asset.get("checksum")
        if checksum and source.suffix == dest.suffix and _md5(dest) != checksum:
            dest.unlink()
            raise ValueError(
                f"Checksum mismatch for {source}: expected {checksum}, got {_md5(source)}"
            )
        report.append((asset["dest"], "copied"))
    return report
