"""``tunelab env``: versions, devices and GPU memory, for bug reports and sanity checks."""

from __future__ import annotations

import argparse
import platform


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("env", help="show versions, devices and GPU memory")
    parser.set_defaults(func=run)


def environment_report() -> list[tuple[str, str]]:
    import torch

    from tunelab.runs.run_dir import package_versions

    rows = [("python", platform.python_version()), ("platform", platform.platform())]
    rows += list(package_versions().items())
    rows.append(("cuda available", str(torch.cuda.is_available())))
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        rows.append((f"gpu {index}", f"{props.name}, {props.total_memory / 2**30:.1f} GiB"))
    rows.append(("cpu threads", str(torch.get_num_threads())))
    return rows


def run(args: argparse.Namespace) -> int:
    for key, value in environment_report():
        print(f"{key:16} {value}")
    return 0
