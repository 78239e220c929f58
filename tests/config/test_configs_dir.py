"""Every file in configs/ is a valid skulk.yaml, commented key by key, and the LAN example is
locked down: a cluster secret, an admin key file and a store host on every node."""

from pathlib import Path

import pytest
import yaml

from skulk.config.model import Settings

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FILES = sorted(CONFIGS.rglob("*.yaml"))


def test_the_folder_has_the_three_node_lan_cluster():
    assert {f.name for f in (CONFIGS / "lan-3-nodes").glob("*.yaml")} == {"node-a.yaml", "node-b.yaml", "node-c.yaml"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_each_file_loads_through_the_settings_model(path):
    settings = Settings.model_validate(yaml.safe_load(path.read_text()))
    if "lan-3-nodes" in path.parts:
        assert settings.cluster.secret_file is not None and settings.cluster.secret is None
        assert settings.auth.admin_key_file is not None and settings.auth.admin_key is None
        assert settings.model_store is not None and settings.model_store.store_host == "node-a"
        assert settings.api_host == "0.0.0.0" and settings.bootstrap_peers


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_each_key_has_a_comment_above_it(path):
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip() and not line.lstrip().startswith("#") and not line.lstrip().startswith("-"):
            above = lines[i - 1].strip() if i else ""
            assert above.startswith("#"), f"{path.name}:{i + 1} {line!r} has no comment"
