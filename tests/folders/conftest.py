import pytest

from denoise.folders import connect


@pytest.fixture(scope="module")
def client():
    c, cluster = connect(workers=2)
    yield c
    c.close()
    cluster.close()
