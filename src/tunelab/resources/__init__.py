"""Files that ship inside the package: the demo datasets and their ``dataset_info.json``.

They are package data (see ``pyproject.toml``), so an installed wheel finds them wherever it is
run from; the generators that wrote them live in the repository's ``scripts/``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from tunelab.errors import DataError


def demo_data_dir() -> Path:
    """The folder of the packaged demo datasets (it holds their ``dataset_info.json``).

    Raises DataError when the package was installed without its data files.
    """
    folder = files("tunelab.resources").joinpath("data")
    # pip unpacks wheels onto the file system; a zip import would hand back a non-Path here.
    if not isinstance(folder, Path) or not (folder / "dataset_info.json").is_file():
        raise DataError("the packaged demo datasets are missing", where=str(folder),
                        hint="reinstall TuneLab from a wheel or a checkout that includes "
                             "src/tunelab/resources/data (package data)")
    return folder
