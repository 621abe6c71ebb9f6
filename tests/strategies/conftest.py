from __future__ import annotations

import pytest

from tests.support.pools import make_pool


@pytest.fixture
def pool():
    return make_pool()
