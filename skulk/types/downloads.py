"""Per-node model download progress."""

from skulk.types.base import TaggedModel, tagged_union
from skulk.types.ids import ModelId, NodeId


class _Download(TaggedModel):
    node_id: NodeId
    model_id: ModelId


class DownloadPending(_Download):
    pass


class DownloadOngoing(_Download):
    downloaded_bytes: int = 0
    total_bytes: int = 0


class DownloadCompleted(_Download):
    total_bytes: int = 0


class DownloadFailed(_Download):
    error_message: str = ""


DownloadProgress = tagged_union(DownloadPending, DownloadOngoing, DownloadCompleted, DownloadFailed)
