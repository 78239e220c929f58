"""Gossipsub subscriptions pumped into channels, and publishing."""

import logging
from collections import Counter

from libp2p.peer.id import ID
from libp2p.pubsub.pubsub import Pubsub
from libp2p.abc import ISubscriptionAPI

from skulk.faults import isolate
from skulk.net.fanout import Fanout
from skulk.net.host import GOSSIP_MAX_PAYLOAD
from skulk.net.messages import GossipMessage

log = logging.getLogger(__name__)


async def pump_subscription(
    sub: ISubscriptionAPI,
    topic: str,
    self_id: ID,
    fanout: Fanout[GossipMessage],
    counters: Counter[str],
) -> None:
    """Forward messages from other peers; pubsub also hands us our own publishes."""
    while True:
        msg = await sub.get()
        with isolate("net.gossip_message"):
            origin = ID(msg.from_id)
            if origin == self_id:
                continue
            counters["gossip_received"] += 1
            counters["gossip_received_bytes"] += len(msg.data)
            counters[f"gossip_received_bytes:{topic}"] += len(msg.data)
            if not fanout.send(GossipMessage(str(origin), topic, msg.data)):
                counters["gossip_unclaimed"] += 1


async def publish(pubsub: Pubsub, topic: str, data: bytes, counters: Counter[str]) -> None:
    if len(data) > GOSSIP_MAX_PAYLOAD:
        raise ValueError(
            f"gossip payload of {len(data)} bytes exceeds {GOSSIP_MAX_PAYLOAD}; use send_direct"
        )
    try:
        await pubsub.publish(topic, data)
    except Exception:
        counters["gossip_publish_failed"] += 1
        log.exception("publishing on %s failed", topic)
        return
    counters["gossip_published"] += 1
    counters["gossip_published_bytes"] += len(data)  # payload bytes, for bench_scale's per-node cost
    counters[f"gossip_published_bytes:{topic}"] += len(data)
