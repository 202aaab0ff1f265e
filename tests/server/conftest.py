from __future__ import annotations

from collections.abc import Iterator

import pytest
from ws_harness import EchoConversation


@pytest.fixture(autouse=True)
def _fresh_stand_in_registry() -> Iterator[None]:
    EchoConversation.instances.clear()
    yield
    EchoConversation.instances.clear()
