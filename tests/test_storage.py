"""One storage suite, run against the local folder and against a real S3 HTTP endpoint (moto's server)
with SSE-S3 and with SSE-KMS: confirmed writes, hashes, listing, multipart, encryption on every put,
retries, and the spool that keeps documents while S3 is down."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest

from frontdesk.exceptions import ConfigError, StorageError, TransientStorageError
from frontdesk.storage import (
    LocalStorage,
    RetryPolicy,
    S3Storage,
    SpooledObject,
    SpoolingStorage,
    with_retries,
)
from tests.s3server import S3Endpoint, StorageCase, assert_every_put_encrypted, free_port, make_s3_storage

pytest_plugins = ["tests.conftest_s3"]

KEY = "documents/2026/11/doc-0123456789abcdef/original.pdf"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_put_bytes_is_confirmed_and_reads_back(storage_case: StorageCase) -> None:
    st = storage_case.storage
    data = b"%PDF-1.7 not really\n" * 100
    obj = st.put_bytes(data, KEY, content_type="application/pdf")
    assert (obj.key, obj.sha256, obj.size) == (KEY, sha(data), len(data))
    head = st.head(KEY)
    assert head is not None and head.sha256 == sha(data) and head.size == len(data)
    assert st.get_bytes(KEY) == data
    assert obj.uri == st.uri(KEY)
    assert obj.uri.startswith("file://" if storage_case.name == "local" else "s3://")
    assert_every_put_encrypted(storage_case)


def test_put_file_and_overwrite_keep_one_object_per_key(storage_case: StorageCase, tmp_path: Path) -> None:
    st = storage_case.storage
    src = tmp_path / "in.bin"
    src.write_bytes(b"first version")
    st.put_file(src, KEY)
    second = st.put_bytes(b"second version", KEY)
    assert list(st.keys()) == [KEY]
    assert st.head(KEY) == second
    assert st.get_bytes(KEY) == b"second version"
    assert_every_put_encrypted(storage_case)


def test_listing_and_missing_objects(storage_case: StorageCase) -> None:
    st = storage_case.storage
    keys = [f"documents/2026/11/doc-{i:016x}/extraction.json" for i in range(3)] + ["failed/2026/11/x/reason.txt"]
    for i, k in enumerate(keys):
        st.put_bytes(f"{i}".encode(), k)
    assert sorted(st.keys()) == sorted(keys)
    assert sorted(st.keys("documents/")) == sorted(keys[:3])
    listed = {o.key: o.sha256 for o in st.list("failed/")}
    assert listed == {keys[3]: sha(b"3")}
    assert st.head("documents/2026/11/nothing/original.pdf") is None
    with pytest.raises(StorageError):
        st.get_bytes("documents/2026/11/nothing/original.pdf")


@pytest.mark.parametrize("bad", ["", "/abs/key", "a//b", "a/../b", "./a", "a/."])
def test_keys_that_could_escape_or_collide_are_refused(storage_case: StorageCase, bad: str) -> None:
    with pytest.raises(StorageError):
        storage_case.storage.put_bytes(b"x", bad)


def test_large_file_goes_up_in_parts_with_checksums(storage_case: StorageCase, tmp_path: Path) -> None:
    st = storage_case.storage
    big = tmp_path / "big.pdf"
    data = os.urandom(11 * 1024 * 1024)  # above the 5 MiB threshold of the test storages
    big.write_bytes(data)
    obj = st.put_file(big, KEY, content_type="application/pdf")
    assert obj.sha256 == sha(data) and obj.size == len(data)
    assert st.head(KEY).sha256 == sha(data)  # type: ignore[union-attr]
    if storage_case.endpoint is not None:
        urls = [u for u, _ in storage_case.puts.requests]
        assert any("uploads" in u for u in urls), "expected a multipart upload"
        # Every part carried a SHA-256 checksum the store verifies on receipt.
        part_headers = [h for u, h in storage_case.puts.requests if "partNumber" in u]
        assert all("x-amz-checksum-sha256" in h for h in part_headers)
        head = storage_case.endpoint.client().head_object(Bucket=storage_case.bucket,
                                                          Key=st._full(KEY))
        assert head["Metadata"] == {"sha256": sha(data)}
    assert_every_put_encrypted(storage_case)


def test_metadata_holds_only_the_hash(storage_case: StorageCase) -> None:
    if storage_case.endpoint is None:
        pytest.skip("local files have no metadata")
    st = storage_case.storage
    st.put_bytes(b"{}", KEY, content_type="application/json")
    head = storage_case.endpoint.client().head_object(Bucket=storage_case.bucket, Key=st._full(KEY),
                                                      ChecksumMode="ENABLED")
    assert head["Metadata"] == {"sha256": sha(b"{}")}
    assert head["ChecksumSHA256"] == base64.b64encode(bytes.fromhex(sha(b"{}"))).decode()
    assert head["ContentType"] == "application/json"
    assert_every_put_encrypted(storage_case)


def test_prefix_keeps_keys_logical(s3_endpoint: S3Endpoint) -> None:
    bucket = s3_endpoint.new_bucket()
    st = make_s3_storage(s3_endpoint, bucket, prefix="/clinic-7/")
    st.put_bytes(b"x", KEY)
    raw = [o["Key"] for o in s3_endpoint.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert raw == [f"clinic-7/{KEY}"]
    assert list(st.keys()) == [KEY]
    assert st.uri(KEY) == f"s3://{bucket}/clinic-7/{KEY}"


def test_an_object_stored_without_encryption_is_refused(s3_endpoint: S3Endpoint) -> None:
    """If the store ever answers that an object is not encrypted (a proxy stripping headers, an
    S3-compatible store ignoring them), the write is not confirmed."""
    st = make_s3_storage(s3_endpoint, s3_endpoint.new_bucket())

    def strip_sse(parsed: dict, **kwargs: object) -> None:  # type: ignore[type-arg]
        parsed.pop("ServerSideEncryption", None)

    st.client.meta.events.register("after-call.s3.HeadObject", strip_sse)
    with pytest.raises(StorageError, match="not encrypted"):
        st.put_bytes(b"x", KEY)


def test_kms_key_must_match(s3_endpoint: S3Endpoint) -> None:
    bucket = s3_endpoint.new_bucket()
    key_a = s3_endpoint.new_kms_key()
    st = make_s3_storage(s3_endpoint, bucket, sse="aws:kms", kms_key_id=key_a)
    st.put_bytes(b"x", KEY)
    other = make_s3_storage(s3_endpoint, bucket, sse="aws:kms", kms_key_id=s3_endpoint.new_kms_key())

    def claim_key_a(parsed: dict, **kwargs: object) -> None:  # type: ignore[type-arg]
        parsed["SSEKMSKeyId"] = key_a

    other.client.meta.events.register("after-call.s3.HeadObject", claim_key_a)
    with pytest.raises(StorageError, match="not encrypted as configured"):
        other.put_bytes(b"y", KEY)


def test_s3_settings_are_checked() -> None:
    with pytest.raises(ConfigError):
        S3Storage("")
    with pytest.raises(ConfigError):
        S3Storage("bucket", sse="none")


def test_unreachable_endpoint_is_transient_and_retried(tmp_path: Path) -> None:
    port_nobody_listens_on = f"http://127.0.0.1:{_closed_port()}"
    st = S3Storage("bucket", endpoint_url=port_nobody_listens_on, max_attempts=2,
                   retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.01), connect_timeout=1)
    calls = []
    st.client.meta.events.register("before-send.s3.*", lambda request, **kw: calls.append(request.method))
    with pytest.raises(TransientStorageError) as err:
        st.put_bytes(b"x", KEY)
    assert KEY in str(err.value) and "not reachable" in str(err.value)
    assert len(calls) == 3 * 2  # our three attempts, each with botocore's two


def test_with_retries_backs_off_then_gives_up() -> None:
    slept: list[float] = []
    attempts = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise TransientStorageError("down")
        return "ok"

    assert with_retries(flaky, RetryPolicy(attempts=3, base_delay=1, max_delay=10), "t", sleep=slept.append) == "ok"
    assert len(slept) == 2 and 0.5 <= slept[0] <= 1 and 1 <= slept[1] <= 2  # exponential, with jitter
    attempts.clear()
    with pytest.raises(TransientStorageError):
        with_retries(flaky, RetryPolicy(attempts=2, base_delay=1), "t", sleep=slept.append)

    def broken() -> str:
        raise StorageError("refused")

    with pytest.raises(StorageError):  # a permanent error is not retried
        with_retries(broken, RetryPolicy(attempts=5), "t", sleep=lambda s: pytest.fail("retried"))


def test_local_confirmation_catches_a_bad_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    st = LocalStorage(tmp_path / "storage")
    real = st.head

    def lying_head(key: str):  # type: ignore[no-untyped-def]
        obj = real(key)
        return obj.model_copy(update={"sha256": "0" * 64}) if obj else None

    monkeypatch.setattr(st, "head", lying_head)
    with pytest.raises(StorageError, match="does not match"):
        st.put_bytes(b"x", KEY)


def test_spool_keeps_writes_while_s3_is_down_and_flush_sends_them(own_s3_endpoint: S3Endpoint,
                                                                  tmp_path: Path) -> None:
    endpoint = own_s3_endpoint
    bucket = endpoint.new_bucket()
    backend = make_s3_storage(endpoint, bucket)
    st = SpoolingStorage(backend, tmp_path / "spool", cooldown=300)
    st.put_bytes(b"before", "documents/a/original.pdf")
    endpoint.stop()
    spooled = st.put_bytes(b"during", "documents/b/original.pdf")
    assert isinstance(spooled, SpooledObject) and spooled.sha256 == sha(b"during")
    assert not st.available  # cooling down: the next put goes straight to the spool, without waiting
    calls = []
    backend.client.meta.events.register("before-send.s3.*", lambda request, **kw: calls.append(1))
    st.put_bytes(b"during 2", "documents/c/original.pdf")
    assert calls == []
    assert [e.key for e in st.spooled()] == ["documents/b/original.pdf", "documents/c/original.pdf"]
    assert st.get_bytes("documents/b/original.pdf") == b"during"
    # Spool file names are as opaque as the keys: a hash, nothing else.
    assert all(p.name.endswith((".data", ".json")) and "documents" not in p.name
               for p in (tmp_path / "spool" / "objects").iterdir())

    report = st.flush()
    assert report.sent == [] and report.waiting == 2 and report.error
    endpoint.start()
    sent = []
    report = st.flush(on_sent=sent.append)
    assert [o.key for o in report.sent] == ["documents/b/original.pdf", "documents/c/original.pdf"]
    assert [o.key for o in sent] == [o.key for o in report.sent]
    assert report.waiting == 0 and st.spooled() == [] and st.available
    assert backend.get_bytes("documents/c/original.pdf") == b"during 2"


def test_flush_keeps_the_spooled_copy_when_recording_fails(own_s3_endpoint: S3Endpoint, tmp_path: Path) -> None:
    """A copy leaves the spool only after the records say it is stored: a crash in between re-sends it."""
    backend = make_s3_storage(own_s3_endpoint, own_s3_endpoint.new_bucket())
    st = SpoolingStorage(backend, tmp_path / "spool")
    own_s3_endpoint.stop()
    st.put_bytes(b"x", KEY)
    own_s3_endpoint.start()

    def crash(obj: object) -> None:
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        st.flush(on_sent=crash)
    assert [e.key for e in st.spooled()] == [KEY]
    assert st.flush().sent[0].key == KEY and st.spooled() == []


def test_a_successful_put_drops_an_older_spooled_copy(tmp_path: Path) -> None:
    st = SpoolingStorage(LocalStorage(tmp_path / "storage"), tmp_path / "spool")
    st._spool(KEY, b"old", "application/pdf")
    st.put_bytes(b"new", KEY)
    assert st.spooled() == []
    assert st.flush().sent == []
    assert st.get_bytes(KEY) == b"new"


def _closed_port() -> int:
    return free_port()  # free now, and nothing will listen on it


def test_temp_files_of_killed_writers_are_swept_when_old(tmp_path: Path) -> None:
    st = SpoolingStorage(LocalStorage(tmp_path / "storage"), tmp_path / "spool")
    st.put_bytes(b"kept", KEY)
    folder = (tmp_path / "storage" / KEY).parent
    old_part, new_part = folder / ".part-old", folder / ".part-new"
    old_spool = tmp_path / "spool" / "objects" / ".part-x"
    for p in (old_part, new_part, old_spool):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"half")
    for p in (old_part, old_spool):
        os.utime(p, (1, 1))
    assert list(st.keys()) == [KEY]  # never listed as objects
    assert st.sweep_partials(older_than=3600) == 2
    assert not old_part.exists() and not old_spool.exists() and new_part.exists()
    assert st.get_bytes(KEY) == b"kept"
