"""Runner supervision on the node side: start one rank's runner subprocess, follow its statuses
and outputs, enforce deadlines, reap it; plus the crash breaker and local CPU planning."""

from skulk.runner.breaker import CrashBreaker
from skulk.runner.cpus import cpus_for_rank, split_cpus
from skulk.runner.launch import Deadlines
from skulk.runner.outputs import RunnerOutput
from skulk.runner.supervisor import RunnerSupervisor

__all__ = ["CrashBreaker", "Deadlines", "RunnerOutput", "RunnerSupervisor", "cpus_for_rank", "split_cpus"]
