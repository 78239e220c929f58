"""Every network topic and stream protocol, declared in one place."""

HEARTBEAT_TOPIC = "skulk/heartbeat/1"
ELECTION_TOPIC = "skulk/election/1"
GOSSIP_TOPICS = (HEARTBEAT_TOPIC, ELECTION_TOPIC)

CLUSTER_PROTOCOL = "/skulk/cluster/1"  # ordered event log, commands, catch-up
DATA_PROTOCOL = "/skulk/data/1"  # generated tokens, rank 0 -> the API node that owns the request
# election statuses, also sent straight to every connected peer (gossip relays lag under load)
ELECTION_PROTOCOL = "/skulk/election/1"
DIRECT_PROTOCOLS = (CLUSTER_PROTOCOL, DATA_PROTOCOL, ELECTION_PROTOCOL)
