"""One contract for every frame store: filesystem, GridFS on mongomock, GridFS on a real MongoDB.

The real-server run needs ``C3S_MONGO_URL`` naming a reachable server; otherwise it is skipped
with the reason shown in pytest's summary (``-ra``).
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import random
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mongomock
import mongomock.gridfs
import pymongo
import pytest
from bson import ObjectId
from pymongo.errors import PyMongoError
from pymongo.read_preferences import ReadPreference
from pymongo.write_concern import WriteConcern

from c3s.framestore import (
    FileCorrupt,
    FileMissing,
    FileSystemStore,
    FrameStore,
    GridFSStore,
    TooLarge,
    mongo_client_options,
    open_store,
    parse_write_concern,
)

# pymongo writes GridFS chunks in batches of up to 48 MB (gridfs' _UPLOAD_BUFFER_SIZE), so only a
# failure after more than that has been streamed leaves chunks in the database for abort() to
# remove. The failure tests stream past it and check that chunks really were there.
PAST_UPLOAD_BUFFER = 49_000_000
BUCKET = "files"


class _GridFSReadyMongomockClient(mongomock.MongoClient):
    """mongomock's client plus the one client attribute pymongo's GridFSBucket reads.

    Why a shim and not a version pin: since client-side operation timeouts (pymongo 4.2),
    ``GridFSBucket.__init__`` stores ``db.client.options.timeout`` and its ``@_csot.apply``
    methods add it to ``time.monotonic()``. mongomock's client has no ``options``; its
    ``__getattr__`` turns the name into a Database and ``.timeout`` into a Collection, hence
    "unsupported operand type(s) for +: 'float' and 'Collection'". Every pymongo that setup.cfg
    allows (>= 4.6; 4.6.3, 4.8.0, 4.9.2, 4.10.1 and 4.20.1 checked) reads it, and mongomock 4.3.0
    is the newest release, so no pin fixes it. ``timeout=None`` is what a real client without
    ``timeoutMS`` reports. Nothing in ``c3s.framestore`` changes: the store runs the same
    pymongo GridFS code against mongomock as against a server.
    """

    options = SimpleNamespace(timeout=None)


@dataclass
class Backend:
    """A store plus the test's back door into its storage."""

    name: str
    store: FrameStore
    tamper: Callable[[str], None]  # damage a stored file's bytes, keeping its length
    lose_part: Callable[[str], None]  # lose a piece of a stored file (a chunk, a file's tail)
    leftovers: Callable[[], list[Any]]  # every stored artefact: chunks, records, temp files
    chunk_count: Callable[[str], int] | None = None


def _filesystem_backend(directory: Path) -> Backend:
    store = FileSystemStore(directory)

    def tamper(file_id: str) -> None:
        path = directory / file_id[:2] / file_id
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))

    def lose_part(file_id: str) -> None:
        path = directory / file_id[:2] / file_id
        path.write_bytes(path.read_bytes()[: -300_000])

    def leftovers() -> list[Any]:
        return sorted(p for p in directory.rglob("*") if p.is_file())

    return Backend("filesystem", store, tamper, lose_part, leftovers)


def _gridfs_backend(name: str, store: GridFSStore, database: Any) -> Backend:
    chunks = database[f"{BUCKET}.chunks"]
    files = database[f"{BUCKET}.files"]

    def tamper(file_id: str) -> None:
        chunk = chunks.find_one({"files_id": ObjectId(file_id)}, sort=[("n", 1)])
        data = bytearray(chunk["data"])
        data[len(data) // 2] ^= 0xFF
        chunks.update_one({"_id": chunk["_id"]}, {"$set": {"data": bytes(data)}})

    def lose_part(file_id: str) -> None:
        chunks.delete_one({"files_id": ObjectId(file_id), "n": 1})

    def leftovers() -> list[Any]:
        return [("chunk", c["files_id"], c["n"]) for c in chunks.find({}, projection={"data": 0})] + [
            ("file", f["_id"]) for f in files.find({})
        ]

    def chunk_count(file_id: str) -> int:
        return chunks.count_documents({"files_id": ObjectId(file_id)})

    return Backend(name, store, tamper, lose_part, leftovers, chunk_count)


@pytest.fixture(scope="module")
def _mongomock_gridfs() -> None:
    # Patches gridfs' isinstance checks to accept mongomock objects; it only widens them.
    mongomock.gridfs.enable_gridfs_integration()


@functools.cache
def _real_mongo_problem(url: str | None) -> str | None:
    """Why the real-server run cannot happen, or None when it can (asked once per session)."""
    if not url:
        return "C3S_MONGO_URL is not set: no real MongoDB to run the GridFS contract against"
    probe: pymongo.MongoClient = pymongo.MongoClient(url, serverSelectionTimeoutMS=2000)
    try:
        probe.admin.command("ping")
    except PyMongoError as exc:
        return f"C3S_MONGO_URL={url} does not answer: {str(exc)[:120]}"
    finally:
        probe.close()
    return None


@pytest.fixture(params=["filesystem", "gridfs-mongomock", "gridfs-mongodb"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "filesystem":
        yield _filesystem_backend(tmp_path / "files")
    elif request.param == "gridfs-mongomock":
        request.getfixturevalue("_mongomock_gridfs")
        client = _GridFSReadyMongomockClient()
        store = open_store(mongo_url=None, directory=tmp_path, client=client, bucket=BUCKET)
        assert isinstance(store, GridFSStore)
        yield _gridfs_backend(request.param, store, client["c3s"])
    else:
        url = os.environ.get("C3S_MONGO_URL")
        if problem := _real_mongo_problem(url):
            pytest.skip(problem)
        database = f"c3s_test_{secrets.token_hex(4)}"
        store = open_store(mongo_url=url, directory=tmp_path, database=database, bucket=BUCKET)
        assert isinstance(store, GridFSStore)
        client = store._db.client
        try:
            yield _gridfs_backend(request.param, store, client[database])
        finally:
            client.drop_database(database)
            store.close()


def _payload(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


class _Stream(io.RawIOBase):
    """A readable stream of ``total`` bytes (``None``: endless) that can fail part-way.

    Once more than PAST_UPLOAD_BUFFER bytes have been handed out it records what the store has
    already written, so a test can prove the failure happened with data on disk/in the database.
    """

    def __init__(
        self, backend: Backend, total: int | None, fail_with: BaseException | None = None
    ) -> None:
        super().__init__()
        self._backend = backend
        self._remaining = total
        self._fail_with = fail_with
        self._block = _payload(64 * 1024)
        self.sent = 0
        self.written_before_failure: list[Any] = []

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.sent > PAST_UPLOAD_BUFFER and not self.written_before_failure:
            self.written_before_failure = self._backend.leftovers()
        if self._remaining == 0:
            if self._fail_with is not None:
                raise self._fail_with
            return b""
        size = len(self._block) if size < 0 else min(size, len(self._block))
        if self._remaining is not None:
            size = min(size, self._remaining)
            self._remaining -= size
        self.sent += size
        return self._block[:size]


# --------------------------------------------------------------------------- the contract


def test_round_trip_keeps_bytes_and_record(backend: Backend) -> None:
    data = _payload(300_000)
    before = datetime.now(UTC) - timedelta(seconds=1)
    stored = backend.store.put(
        data, filename="frame-001.png", content_type="image/png", metadata={"scene": 3, "order": [1, 2]}
    )

    assert backend.store.get(stored.file_id) == data
    assert stored.length == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert (stored.filename, stored.content_type) == ("frame-001.png", "image/png")
    assert stored.metadata == {"scene": 3, "order": [1, 2]}
    assert before <= stored.uploaded_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert backend.store.info(stored.file_id) == stored
    assert backend.store.exists(stored.file_id)


def test_put_reads_a_stream_and_ids_look_alike(backend: Backend) -> None:
    data = _payload(10_000, seed=1)
    first = backend.store.put(io.BytesIO(data), filename="a.jpg", content_type="image/jpeg")
    second = backend.store.put(data, filename="a.jpg", content_type="image/jpeg")

    assert first.file_id != second.file_id
    for file_id in (first.file_id, second.file_id):
        assert re.fullmatch(r"[0-9a-f]{24}", file_id)
        assert backend.store.get(file_id) == data
    assert first.metadata == {} and first.sha256 == second.sha256


def test_empty_file_round_trips(backend: Backend) -> None:
    stored = backend.store.put(b"", filename="empty.bin", content_type="application/octet-stream")
    assert stored.length == 0
    assert backend.store.get(stored.file_id) == b""


def test_tampered_bytes_are_detected(backend: Backend) -> None:
    data = _payload(600_000, seed=2)
    stored = backend.store.put(data, filename="photo.jpg", content_type="image/jpeg")
    backend.tamper(stored.file_id)

    with pytest.raises(FileCorrupt, match=stored.sha256):
        backend.store.get(stored.file_id)
    with backend.store.open(stored.file_id) as stream, pytest.raises(FileCorrupt):
        stream.read()


def test_lost_bytes_are_detected(backend: Backend) -> None:
    stored = backend.store.put(_payload(800_000, seed=5), filename="photo.jpg", content_type="image/jpeg")
    backend.lose_part(stored.file_id)

    with pytest.raises(FileCorrupt):
        backend.store.get(stored.file_id)
    with backend.store.open(stored.file_id) as stream, pytest.raises(FileCorrupt):
        stream.read()


def test_unknown_and_malformed_ids_are_missing(backend: Backend) -> None:
    for file_id in (str(ObjectId()), "0" * 24, "../../etc/passwd", "not-an-id", ""):
        assert not backend.store.exists(file_id)
        for call in (backend.store.get, backend.store.info, backend.store.open):
            with pytest.raises(FileMissing):
                call(file_id)
        backend.store.delete(file_id)  # unknown ids delete without complaint


def test_delete_is_idempotent_and_leaves_nothing(backend: Backend) -> None:
    keep = backend.store.put(b"keep me", filename="keep.txt", content_type="text/plain")
    gone = backend.store.put(_payload(700_000), filename="gone.mp4", content_type="video/mp4")

    backend.store.delete(gone.file_id)
    backend.store.delete(gone.file_id)

    assert not backend.store.exists(gone.file_id)
    with pytest.raises(FileMissing):
        backend.store.get(gone.file_id)
    assert backend.store.get(keep.file_id) == b"keep me"
    backend.store.delete(keep.file_id)
    assert backend.leftovers() == []


def test_over_max_bytes_is_refused_without_leftovers(backend: Backend) -> None:
    with pytest.raises(TooLarge):
        backend.store.put(b"x" * 1001, filename="big.png", content_type="image/png", max_bytes=1000)
    assert backend.leftovers() == []

    exactly = backend.store.put(b"x" * 1000, filename="ok.png", content_type="image/png", max_bytes=1000)
    assert exactly.length == 1000
    backend.store.delete(exactly.file_id)

    endless = _Stream(backend, total=None)
    with pytest.raises(TooLarge):
        backend.store.put(endless, filename="v.mp4", content_type="video/mp4", max_bytes=PAST_UPLOAD_BUFFER + 500_000)
    assert endless.written_before_failure, "the upload was refused before anything reached storage"
    assert backend.leftovers() == []


def test_reader_failing_mid_stream_leaves_nothing(backend: Backend) -> None:
    dropped = ConnectionResetError("phone upload dropped")
    stream = _Stream(backend, total=PAST_UPLOAD_BUFFER + 300_000, fail_with=dropped)

    with pytest.raises(ConnectionResetError) as caught:
        backend.store.put(stream, filename="clip.mp4", content_type="video/mp4")

    assert caught.value is dropped
    assert stream.written_before_failure, "the reader failed before anything reached storage"
    assert backend.leftovers() == []


def test_unserialisable_metadata_is_refused_before_writing(backend: Backend) -> None:
    with pytest.raises(ValueError, match="metadata"):
        backend.store.put(b"abc", filename="a.png", content_type="image/png", metadata={"when": datetime.now(UTC)})
    assert backend.leftovers() == []


def test_large_file_spans_many_chunks(backend: Backend) -> None:
    data = _payload(5 * 1024 * 1024 + 17, seed=3)
    stored = backend.store.put(io.BytesIO(data), filename="show.gif", content_type="image/gif")

    assert backend.store.get(stored.file_id) == data
    if backend.chunk_count is not None:
        assert backend.chunk_count(stored.file_id) == -(-len(data) // (255 * 1024))


def test_open_streams_in_pieces(backend: Backend) -> None:
    data = _payload(1_000_003, seed=4)
    stored = backend.store.put(data, filename="clip.webm", content_type="video/webm")

    pieces = []
    with backend.store.open(stored.file_id) as stream:
        while piece := stream.read(65_536):
            assert len(piece) <= 65_536
            pieces.append(piece)
    assert b"".join(pieces) == data
    assert len(pieces) > 10


def test_ping_answers(backend: Backend) -> None:
    assert backend.store.ping() is True


# --------------------------------------------------------------------------- settings and health


def test_write_concern_parsing() -> None:
    assert parse_write_concern("majority") == WriteConcern(w="majority")
    assert parse_write_concern("2") == WriteConcern(w=2)
    assert parse_write_concern(" 1 ") == WriteConcern(w=1)
    for bad in ("0", "all", "", "-1", "1.5"):
        with pytest.raises(ValueError, match="C3S_MONGO_WRITE_CONCERN"):
            parse_write_concern(bad)


def test_replica_set_uri_gets_production_options(caplog: pytest.LogCaptureFixture) -> None:
    url = "mongodb://m1:27017,m2:27017,m3:27017/?replicaSet=c3s"
    with caplog.at_level(logging.WARNING, logger="c3s.framestore"):
        options = mongo_client_options(url)

    assert caplog.records == []
    assert options["retryWrites"] is True
    assert options["w"] == "majority"
    assert options["readPreference"] == "primaryPreferred"
    assert options["serverSelectionTimeoutMS"] <= 10_000
    assert mongo_client_options(url, write_concern="2")["w"] == 2


def test_uri_without_replica_set_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="c3s.framestore"):
        mongo_client_options("mongodb://localhost:27017")
    assert any("replicaSet" in record.getMessage() for record in caplog.records)

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="c3s.framestore"):
        # An SRV record names the replica set itself, and parsing it here would query DNS.
        mongo_client_options("mongodb+srv://cluster.example.net/")
    assert caplog.records == []


def test_uri_settings_may_override_reads_and_timeouts() -> None:
    options = mongo_client_options(
        "mongodb://m1,m2/?replicaSet=rs&readPreference=secondaryPreferred&serverSelectionTimeoutMS=900"
    )
    assert "readPreference" not in options and "serverSelectionTimeoutMS" not in options
    assert options["retryWrites"] is True


@pytest.mark.parametrize(
    "url",
    [
        "http://example.net/",
        "mongodb://host:notaport/",
        "mongodb://m1/?replicaSet=rs&retryWrites=false",
        "mongodb://m1/?replicaSet=rs&w=0",
        "mongodb://m1/?replicaSet=rs&readPreference=nearest-ish",
    ],
)
def test_bad_uri_names_the_setting(url: str) -> None:
    with pytest.raises(ValueError, match="C3S_MONGO_URL"):
        mongo_client_options(url)


def test_open_store_builds_a_replica_set_client_and_reports_an_absent_server(tmp_path: Path) -> None:
    # Port 9 (discard) on loopback: nothing listens, so the client can never select a server.
    store = open_store(
        mongo_url="mongodb://127.0.0.1:9/?replicaSet=c3s", directory=tmp_path, write_concern="2"
    )
    assert isinstance(store, GridFSStore)
    try:
        client_options = store._db.client.options
        assert client_options.retry_writes is True
        assert client_options.read_preference == ReadPreference.PRIMARY_PREFERRED
        assert client_options.replica_set_name == "c3s"
        assert store._bucket._chunks.write_concern == WriteConcern(w=2)

        started = time.monotonic()
        assert store.ping() is False
        assert time.monotonic() - started < 5
    finally:
        store.close()


def test_open_store_without_mongo_uses_the_directory(tmp_path: Path) -> None:
    store = open_store(mongo_url=None, directory=tmp_path / "files")
    assert isinstance(store, FileSystemStore)
    stored = store.put(b"frame", filename="f.png", content_type="image/png")
    assert (tmp_path / "files" / stored.file_id[:2] / stored.file_id).read_bytes() == b"frame"


def test_bad_write_concern_is_refused_by_open_store(tmp_path: Path, _mongomock_gridfs: None) -> None:
    with pytest.raises(ValueError, match="C3S_MONGO_WRITE_CONCERN"):
        open_store(mongo_url=None, directory=tmp_path, client=_GridFSReadyMongomockClient(), write_concern="zero")


def test_filesystem_ping_fails_when_directory_is_unusable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    assert FileSystemStore(blocker / "files").ping() is False
