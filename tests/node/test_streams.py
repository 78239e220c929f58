"""Open streams end when their task is cancelled or fails, even when the task left the state already."""

from types import SimpleNamespace

from skulk.node.streams import StreamRegistry
from skulk.types.events import TaskCreated, TaskDeleted, TaskStatusUpdated
from skulk.types.state import State
from skulk.types.tasks import ChatMessage, TaskStatus, TextGeneration, TextGenerationTaskParams
from tests.factories import ring_instance


def _task(task_id: str) -> TextGeneration:
    params = TextGenerationTaskParams(model="org/tiny", input=[ChatMessage(role="user", content="hi")])
    return TextGeneration(task_id=task_id, instance_id="i1", command_id=f"cmd-{task_id}", task_params=params)


def _batch(*events):
    return [SimpleNamespace(idx=i, event=e) for i, e in enumerate(events)]


def test_a_cancel_command_ends_the_stream_though_its_task_is_deleted_in_the_same_batch():
    streams = StreamRegistry()
    recv = streams.open("cmd-t1")
    streams.fail_on_events(State(), _batch(TaskCreated(task_id="t1", task=_task("t1"))))
    after = State(instances={"i1": ring_instance("i1", ["a"])})  # the task is gone, its instance is not
    streams.fail_on_events(after, _batch(TaskStatusUpdated(task_id="t1", task_status=TaskStatus.Cancelled),
                                         TaskDeleted(task_id="t1")))
    chunk = recv.receive_nowait()
    assert chunk.error_type == "cancelled" and chunk.error_message == "Command cancelled." and "cmd-t1" not in streams


def test_an_instance_deletion_says_so():
    streams = StreamRegistry()
    recv = streams.open("cmd-t2")
    cancelled = _task("t2").model_copy(update={"task_status": TaskStatus.Cancelled})
    streams.fail_on_events(State(tasks={"t2": cancelled}),
                           _batch(TaskStatusUpdated(task_id="t2", task_status=TaskStatus.Cancelled)))
    assert "instance was deleted" in recv.receive_nowait().error_message
