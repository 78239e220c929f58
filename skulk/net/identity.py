"""A node's persistent Ed25519 identity (its libp2p peer id)."""

from pathlib import Path

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.identity_utils import load_identity, save_identity
from libp2p.peer.id import ID


def load_or_create_keypair(path: Path) -> KeyPair:
    """Load the key at `path`, or create it (parent dirs too, mode 0600) if missing."""
    path = Path(path)
    if path.exists():
        return load_identity(path)
    keypair = create_new_key_pair()
    save_identity(keypair, path)  # creates parent dirs, writes with mode 0600
    return keypair


def node_id_of(keypair: KeyPair) -> str:
    """The base58 peer id ("12D3KooW...") derived from the public key."""
    return ID.from_pubkey(keypair.public_key).to_base58()
