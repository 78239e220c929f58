"""On-disk stores: the event log, snapshots, the model directory and staging."""
