"""Free space on the volume holding a path (the models directory)."""

from pathlib import Path

import psutil

from skulk.types.ids import Memory
from skulk.types.node import DiskUsage


def read_disk(path: Path | str) -> DiskUsage:
    """Total and available bytes of the volume; zeros if nothing on the path can be measured.

    A directory that does not exist yet is measured at its nearest existing parent, since that
    is where it will be created.
    """
    for candidate in (Path(path).absolute(), *Path(path).absolute().parents):
        try:
            usage = psutil.disk_usage(str(candidate))
        except OSError:
            continue
        return DiskUsage(total=Memory(in_bytes=usage.total), available=Memory(in_bytes=usage.free))
    return DiskUsage(total=Memory(in_bytes=0), available=Memory(in_bytes=0))
