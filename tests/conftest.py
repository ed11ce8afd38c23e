"""Shared fixtures: paths to the shared data, the engine loaded once per session."""
from __future__ import annotations

import os

# Before torch loads: with OpenMP's default busy-wait, 2-thread torch slows up to 10x when the
# other core is busy (browser, server, another process). The app sets the same.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

import sqlalchemy as sa  # noqa: E402

from tests.support.data import DATA  # noqa: E402
from tests.support.pg_server import PgServer, pg_required  # noqa: E402


@pytest.fixture(scope="session")
def engine():
    from pipeline.engine.mask_detector import MaskDetector
    return MaskDetector.load(device="cpu")


@pytest.fixture(scope="session")
def detector_nets(tmp_path_factory):
    """P/R/O-Net with the ORIGINAL MTCNN weights, converted afresh by training.convert_mtcnn
    (weights/ may hold fine-tuned detector weights, which the conversion tests must not see)."""
    from pipeline.engine.weights import load_net
    from training.convert_mtcnn import convert
    folder = tmp_path_factory.mktemp("converted_mtcnn")
    convert(DATA / "pretrained" / "mtcnn_original", folder)
    return {n: load_net(n, folder) for n in ("pnet", "rnet", "onet")}


@pytest.fixture(scope="session")
def original_weights():
    import torch
    src = DATA / "pretrained" / "mtcnn_original"
    return {n: torch.load(src / f"{n}.pt", map_location="cpu", weights_only=True) for n in ("pnet", "rnet", "onet")}


@pytest.fixture(scope="session")
def pg_url():
    """A PostgreSQL URL for the whole session: MASKWATCH_TEST_PG_URL, else a throwaway server on
    127.0.0.1 (tests.support.pg_server). Skipped without one, failed in CI (pg_required)."""
    url = os.environ.get("MASKWATCH_TEST_PG_URL")
    server = None
    try:
        if not url:
            server = PgServer().start()
            url = server.url
        eng = sa.create_engine(url)
        with eng.connect():
            pass
        eng.dispose()
    except Exception as e:   # PgUnavailable, psycopg2 errors, a missing binary
        if server:
            server.stop()
        msg = f"PostgreSQL is not available for the store tests: {type(e).__name__}: {e}"
        if pg_required():
            pytest.fail(msg + " (CI or MASKWATCH_REQUIRE_PG is set, so this is a failure)")
        pytest.skip(msg)
    yield url
    if server:
        server.stop()
