import pytest

from skulk.testing.cluster import LocalCluster


@pytest.fixture
def cluster(tmp_path):
    c = LocalCluster(tmp_path)
    try:
        yield c
    finally:
        c.stop_all()
