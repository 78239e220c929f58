"""A node's persistent Ed25519 identity (its libp2p peer id)."""

from pathlib import Path

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.identity_utils import load_identity
from libp2p.peer.id import ID

from skulk.atomic_files import write_file_atomically


def load_or_create_keypair(path: Path) -> KeyPair:
    """Load the key at `path`, or create it (parent dirs too, mode 0600) if missing."""
    path = Path(path)
    if path.exists():
        return load_identity(path)
    keypair = create_new_key_pair()
    # libp2p's own format, written durably: a crash mid-write must not leave a half key.
    write_file_atomically(path, keypair.private_key.serialize(), mode=0o600)
    return keypair


def node_id_of(keypair: KeyPair) -> str:
    """The base58 peer id ("12D3KooW...") derived from the public key."""
    return ID.from_pubkey(keypair.public_key).to_base58()
