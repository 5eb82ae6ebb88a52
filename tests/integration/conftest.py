"""The three services as real processes on loopback, exporting to an in-test receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.otlp import OtlpReceiver
from support.services import running_chain


@pytest.fixture(scope="session")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as otlp:
        yield otlp


@pytest.fixture(scope="session")
def gateway_url(receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The suite's own services, with default settings; the gateway's base URL."""
    with running_chain(receiver, tmp_path_factory.mktemp("services")) as url:
        yield url
