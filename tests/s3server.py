"""Helpers for the storage and records suites: a real S3 HTTP endpoint (moto's server mode) that a test
can stop and restart, a log of the headers of every put, and throw-away PostgreSQL databases.
The fixtures built on them are in ``tests/conftest_s3.py``."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_SESSION_TOKEN": "testing"}
PUT_OPERATIONS = ("PutObject", "CreateMultipartUpload")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class S3Endpoint:
    """A moto S3 server on 127.0.0.1 that a test can stop and start again on the same port. Its data
    lives in this process (moto's backends), so it survives a restart, like a real store would."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def client(self, service: str = "s3") -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def new_bucket(self) -> str:
        name = f"fd-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def new_kms_key(self) -> str:
        return str(self.client("kms").create_key(Description="frontdesk test")["KeyMetadata"]["KeyId"])


@dataclass
class PutLog:
    """Headers of every object-creating request a boto3 client sent."""

    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def attach(self, client: Any) -> None:
        for op in PUT_OPERATIONS:
            client.meta.events.register(f"before-send.s3.{op}", self._record)

    def _record(self, request: Any, **kwargs: Any) -> None:
        headers = {k.lower(): (v.decode() if isinstance(v, bytes) else str(v)) for k, v in request.headers.items()}
        self.requests.append((request.url, headers))


@dataclass
class StorageCase:
    """A storage under test and what the assertions need to know about it."""

    name: str
    storage: Any  # the backend itself (LocalStorage or S3Storage)
    puts: PutLog
    sse: str | None = None
    kms_key_id: str | None = None
    endpoint: S3Endpoint | None = None
    bucket: str | None = None


def s3_settings(endpoint: S3Endpoint, bucket: str, *, sse: str = "AES256", kms_key_id: str | None = None,
                prefix: str = "") -> dict[str, Any]:
    return {"bucket": bucket, "prefix": prefix, "endpoint_url": endpoint.url, "region": "us-east-1", "sse": sse,
            "kms_key_id": kms_key_id, "max_attempts": 2, "multipart_threshold_mb": 5}


def make_s3_storage(endpoint: S3Endpoint, bucket: str, *, sse: str = "AES256", kms_key_id: str | None = None,
                    prefix: str = "") -> Any:
    from frontdesk.storage import RetryPolicy, S3Storage

    return S3Storage(bucket, prefix=prefix, endpoint_url=endpoint.url, sse=sse, kms_key_id=kms_key_id,
                     max_attempts=2, multipart_threshold_mb=5,
                     retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02),
                     connect_timeout=2, read_timeout=10)


def assert_every_put_encrypted(case: StorageCase) -> int:
    """Every object-creating request carried the SSE header (and the KMS key id); every object in the
    bucket reports the same encryption. Returns how many requests were checked."""
    if case.endpoint is None:
        return 0
    assert case.puts.requests, "no PutObject/CreateMultipartUpload request was seen"
    for url, headers in case.puts.requests:
        assert headers.get("x-amz-server-side-encryption") == case.sse, url
        if case.kms_key_id:
            assert headers.get("x-amz-server-side-encryption-aws-kms-key-id") == case.kms_key_id, url
    client = case.endpoint.client()
    listed = client.list_objects_v2(Bucket=case.bucket).get("Contents", [])
    for item in listed:
        head = client.head_object(Bucket=case.bucket, Key=item["Key"])
        assert head.get("ServerSideEncryption") == case.sse, item["Key"]
        if case.kms_key_id:
            assert str(head.get("SSEKMSKeyId", "")).endswith(case.kms_key_id), item["Key"]
    return len(case.puts.requests)


# --- databases ------------------------------------------------------------------------------------------

POSTGRES_ENV = "FRONTDESK_TEST_POSTGRES_URL"


def postgres_db(admin_url: str) -> Iterator[str]:
    """A fresh database on the given server for one test, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from frontdesk.db import make_engine

    admin = make_engine(admin_url)
    name = f"fdtest_{uuid.uuid4().hex[:10]}"
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        import time
        import warnings

        from sqlalchemy.exc import DBAPIError
        from sqlalchemy.pool import NullPool

        # FORCE ends the test's leftover sessions; an autovacuum worker on the new database belongs to
        # the server, and ending it needs pg_signal_backend, so a refused drop is tried again, then left.
        for attempt in range(10):
            try:
                with create_engine(admin.url, poolclass=NullPool).connect().execution_options(
                        isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                break
            except DBAPIError as exc:
                if attempt == 9:
                    warnings.warn(f"test database {name} was not dropped ({exc.__class__.__name__})", stacklevel=1)
                time.sleep(0.5)
        admin.dispose()


def settings_for(tmp_path: Path, db: str, **storage: Any) -> Any:
    """Settings with throw-away storage, spool and database."""
    from frontdesk.settings import load_settings

    st: dict[str, Any] = {"root": tmp_path / "storage", "spool": tmp_path / "spool"}
    st.update(storage)
    return load_settings(storage=st, database_url=db, inbox=tmp_path / "inbox")


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_main(*args: str, env: dict[str, str]) -> CliResult:
    """The ``frontdesk`` command in this process (argument parsing, handlers, exit codes, output), with
    ``env`` as the environment: a second faster than a subprocess, for tests that call it many times."""
    import contextlib
    import io

    from frontdesk.cli import main

    saved = dict(os.environ)
    out, err = io.StringIO(), io.StringIO()
    try:
        os.environ.clear()
        os.environ.update(env)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(list(args))
            except SystemExit as exc:  # argparse errors
                rc = int(exc.code or 0)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return CliResult(rc, out.getvalue(), err.getvalue())
