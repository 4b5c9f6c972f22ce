"""Fixtures for the storage and records suites: a real S3 HTTP endpoint (moto's server mode, on
127.0.0.1 with a free port), storages of every backend, and database URLs (SQLite always; PostgreSQL when
FRONTDESK_TEST_POSTGRES_URL is set). Load with ``pytest_plugins = ["tests.conftest_s3"]`` in a test module.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.s3server import (
    AWS_ENV,
    POSTGRES_ENV,
    PutLog,
    S3Endpoint,
    StorageCase,
    make_s3_storage,
    postgres_db,
)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    """One S3 endpoint for the session (tests use their own buckets)."""
    saved = {k: os.environ.get(k) for k in AWS_ENV}
    os.environ.update(AWS_ENV)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    endpoint = S3Endpoint()
    endpoint.start()
    yield endpoint
    endpoint.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def own_s3_endpoint(s3_endpoint: S3Endpoint) -> Iterator[S3Endpoint]:
    """An endpoint of the test's own, which the test may stop (the AWS env comes from the session one)."""
    endpoint = S3Endpoint()
    endpoint.start()
    yield endpoint
    endpoint.stop()


@pytest.fixture(params=["local", "s3-aes256", "s3-kms"])
def storage_case(request: pytest.FixtureRequest, tmp_path: Path) -> StorageCase:
    """The same suite runs against every backend."""
    from frontdesk.storage import LocalStorage

    if request.param == "local":
        return StorageCase("local", LocalStorage(tmp_path / "storage"), PutLog())
    endpoint: S3Endpoint = request.getfixturevalue("s3_endpoint")
    bucket = endpoint.new_bucket()
    if request.param == "s3-kms":
        key_id = endpoint.new_kms_key()
        st = make_s3_storage(endpoint, bucket, sse="aws:kms", kms_key_id=key_id, prefix="practice-a")
        case = StorageCase("s3-kms", st, PutLog(), "aws:kms", key_id, endpoint, bucket)
    else:
        st = make_s3_storage(endpoint, bucket)
        case = StorageCase("s3-aes256", st, PutLog(), "AES256", None, endpoint, bucket)
    case.puts.attach(st.client)
    return case


@pytest.fixture(scope="session")
def postgres_admin_url(request: pytest.FixtureRequest) -> str:
    """A PostgreSQL server the tests may create databases on: FRONTDESK_TEST_POSTGRES_URL, or a cluster
    started for this session. Skips only where PostgreSQL is not installed at all."""
    from tests.pgcluster import ClusterUnavailable, cluster_url, session_folder

    try:
        return cluster_url(session_folder(request.config))
    except ClusterUnavailable as exc:
        pytest.skip(f"{POSTGRES_ENV} is not set and no PostgreSQL cluster could be started: {exc}")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every records test runs on SQLite, and on PostgreSQL: FRONTDESK_TEST_POSTGRES_URL's server when it
    is set, otherwise the session's throw-away cluster (tests/pgcluster.py)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'records.db'}"
        return
    admin_url: str = request.getfixturevalue("postgres_admin_url")
    yield from postgres_db(admin_url)
