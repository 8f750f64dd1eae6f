"""The frame store: where every binary file of C3S lives.

Frame images of a show and observers' calibration photos and videos go through one small
interface, :class:`FrameStore`, with two implementations chosen by :func:`open_store`:

- :class:`GridFSStore` (production, ``C3S_MONGO_URL`` set): MongoDB GridFS through pymongo's
  ``GridFSBucket``, on a replica set with majority write concern and retryable writes.
- :class:`FileSystemStore` (the embedded default): plain files under a directory.

How files are stored
    ``put`` streams the input in blocks, hashing it with SHA-256 on the way, and never holds a
    whole video in memory. GridFS: the bytes go to ``<bucket>.chunks`` through
    ``open_upload_stream``; the ``<bucket>.files`` document is written last (by pymongo, on close)
    and carries ``metadata = {"sha256", "contentType", "user"}``. Filesystem: the bytes go to a
    temporary file in the file's final directory, are fsynced and renamed into place; then a JSON
    sidecar ``<id>.json`` is written the same way. The sidecar is the commit point: a file exists
    once its sidecar does. Ids are 24 hex digits in both stores (an ObjectId in GridFS, random
    in the filesystem), so callers treat them uniformly; a malformed id is simply unknown.

How files are verified
    ``get`` re-hashes the bytes and raises :class:`FileCorrupt` when the digest or the length
    differs from what ``put`` recorded (or when GridFS reports missing/short chunks). ``open``
    returns a stream that hashes as it is read and raises :class:`FileCorrupt` at the end of the
    stream, so a consumer that reads to the end never silently uses damaged bytes.

How failures are cleaned up
    Any exception during ``put`` (the reader raising, the size going over ``max_bytes``, the
    database failing) removes what was written so far: GridFS calls ``GridIn.abort()``, which
    deletes the file's chunks and files document; the filesystem store unlinks its temporary
    file (and the data file, when the sidecar could not be written). A caller never sees a file
    id for a failed upload and no orphan chunks or temp files remain. ``delete`` removes the
    record first and the bytes second, so an interrupted delete leaves bytes nobody can see rather
    than a record pointing at nothing; it is idempotent.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

import pymongo
from bson import ObjectId
from bson.errors import InvalidId
from gridfs import GridFSBucket
from gridfs.errors import CorruptGridFile, NoFile
from pymongo.errors import PyMongoError

from c3s.errors import TooLarge  # ``put`` read more than ``max_bytes``; nothing was stored
from c3s.mongo import check_mongo_url, mongo_client_options, parse_write_concern

__all__ = [
    "FileCorrupt",
    "FileMissing",
    "FileSystemStore",
    "FrameStore",
    "GridFSStore",
    "StoredFile",
    "TooLarge",
    "check_mongo_url",
    "mongo_client_options",
    "open_store",
    "parse_write_concern",
]

log = logging.getLogger(__name__)


# Reads are copied in blocks of this size; one GridFS chunk (pymongo's default) per block.
BLOCK_BYTES = 255 * 1024
# A health check must answer well inside a load balancer's probe interval.
PING_TIMEOUT_S = 2.0

_ID_RE = re.compile(r"^[0-9a-f]{24}$")


@dataclass(frozen=True)
class StoredFile:
    """What the store knows about one file; ``metadata`` is the caller's own dict."""

    file_id: str
    filename: str
    length: int
    content_type: str
    sha256: str
    uploaded_at: datetime
    metadata: dict = field(default_factory=dict)


class FileCorrupt(Exception):
    """The stored bytes do not match the SHA-256 (or length) recorded when they were stored."""


class FileMissing(KeyError):
    """No file has this id."""


@runtime_checkable
class FrameStore(Protocol):
    """Where binary files live; implemented by :class:`GridFSStore` and :class:`FileSystemStore`."""

    def put(
        self,
        data: bytes | BinaryIO,
        *,
        filename: str,
        content_type: str,
        metadata: dict | None = None,
        max_bytes: int | None = None,
    ) -> StoredFile:
        """Store ``data`` (bytes or a readable binary stream) and return its record."""
        ...

    def get(self, file_id: str) -> bytes:
        """Return the whole file, verified; raise FileCorrupt / FileMissing."""
        ...

    def open(self, file_id: str) -> BinaryIO:
        """Return a streaming reader that raises FileCorrupt at the end if the bytes are damaged."""
        ...

    def info(self, file_id: str) -> StoredFile:
        """Return the file's record; raise FileMissing."""
        ...

    def delete(self, file_id: str) -> None:
        """Remove the file; removing an unknown id is not an error."""
        ...

    def exists(self, file_id: str) -> bool:
        """Whether a file with this id is stored."""
        ...

    def ping(self) -> bool:
        """Whether the backend answers (for the health endpoint)."""
        ...


# --------------------------------------------------------------------------- shared helpers


def _as_reader(data: bytes | bytearray | memoryview | BinaryIO) -> BinaryIO:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return io.BytesIO(data)
    if not hasattr(data, "read"):
        raise TypeError(f"data must be bytes or a readable binary stream, got {type(data).__name__}")
    return data


def _blocks(reader: BinaryIO, max_bytes: int | None, sha: Any) -> Any:
    """Yield the reader's blocks, hashing them and raising TooLarge past ``max_bytes``."""
    total = 0
    while True:
        block = reader.read(BLOCK_BYTES)
        if not block:
            return
        if not isinstance(block, (bytes, bytearray)):
            raise TypeError(f"the stream returned {type(block).__name__}, expected bytes")
        total += len(block)
        if max_bytes is not None and total > max_bytes:
            raise TooLarge(f"file is larger than the limit of {max_bytes} bytes")
        sha.update(block)
        yield block


def _check_put_arguments(
    data: object, filename: str, content_type: str, metadata: dict | None, max_bytes: int | None
) -> dict:
    """Validate ``put``'s arguments before anything is written; return a JSON-clean metadata copy."""
    if not filename:
        raise ValueError("filename must not be empty")
    if not content_type:
        raise ValueError("content_type must not be empty")
    if max_bytes is not None and max_bytes < 0:
        raise ValueError(f"max_bytes must not be negative, got {max_bytes}")
    if max_bytes is not None and isinstance(data, (bytes, bytearray, memoryview)) and len(data) > max_bytes:
        raise TooLarge(f"file is larger than the limit of {max_bytes} bytes")
    # Both stores keep exactly what JSON can express, so a record reads back the same from either.
    try:
        return json.loads(json.dumps(metadata or {}, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metadata must be JSON-serialisable: {exc}") from exc


def _utc(moment: datetime) -> datetime:
    # pymongo returns naive UTC datetimes unless the client was built with tz_aware=True.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class _VerifyingReader(io.RawIOBase):
    """Pass bytes through from ``raw`` and check length and SHA-256 once it is exhausted."""

    def __init__(self, raw: Any, *, file_id: str, length: int, sha256: str) -> None:
        super().__init__()
        self._raw = raw
        self._file_id = file_id
        self._length = length
        self._expected = sha256
        self._sha = hashlib.sha256()
        self._seen = 0
        self._verified = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if not len(view):
            return 0
        try:
            block = self._raw.read(len(view))
        except CorruptGridFile as exc:
            raise FileCorrupt(f"file {self._file_id}: {exc}") from exc
        if not block:
            self._verify()
            return 0
        view[: len(block)] = block
        self._sha.update(block)
        self._seen += len(block)
        return len(block)

    def _verify(self) -> None:
        if self._verified:
            return
        digest = self._sha.hexdigest()
        if self._seen != self._length or digest != self._expected:
            raise FileCorrupt(
                f"file {self._file_id}: read {self._seen} bytes with SHA-256 {digest}, "
                f"stored {self._length} bytes with SHA-256 {self._expected}"
            )
        self._verified = True

    def close(self) -> None:
        if not self.closed:
            try:
                self._raw.close()
            finally:
                super().close()


def _read_verified(reader: _VerifyingReader) -> bytes:
    with io.BufferedReader(reader, buffer_size=BLOCK_BYTES) as buffered:
        return buffered.read()


# --------------------------------------------------------------------------- GridFS


class GridFSStore:
    """Files in MongoDB GridFS, one bucket; SHA-256 kept in each file's metadata."""

    def __init__(
        self,
        database: Any,
        *,
        bucket: str = "files",
        write_concern: str | int = "majority",
        owns_client: bool = False,
    ) -> None:
        self._db = database
        self._bucket_name = bucket
        self._write_concern = parse_write_concern(write_concern)
        self._bucket = GridFSBucket(database, bucket_name=bucket, write_concern=self._write_concern)
        self._files = database[f"{bucket}.files"]
        self._owns_client = owns_client

    def put(
        self,
        data: bytes | BinaryIO,
        *,
        filename: str,
        content_type: str,
        metadata: dict | None = None,
        max_bytes: int | None = None,
    ) -> StoredFile:
        user_metadata = _check_put_arguments(data, filename, content_type, metadata, max_bytes)
        sha = hashlib.sha256()
        upload = self._bucket.open_upload_stream(filename)
        try:
            for block in _blocks(_as_reader(data), max_bytes, sha):
                upload.write(block)
            # Set before close: pymongo inserts the files document on close, with this metadata,
            # so a file is never visible without its digest.
            upload.metadata = {"sha256": sha.hexdigest(), "contentType": content_type, "user": user_metadata}
            upload.close()
        except BaseException:
            # Deletes the chunks already flushed (pymongo buffers up to 48 MB before writing)
            # and the files document if close() got that far. If abort() itself fails, its error
            # is raised chained to the original one.
            upload.abort()
            raise
        # Built from what was just written rather than read back: a read right after a failover
        # could reach a secondary that has not replicated the file yet.
        return StoredFile(
            file_id=str(upload._id),
            filename=filename,
            length=int(upload.length),
            content_type=content_type,
            sha256=sha.hexdigest(),
            uploaded_at=_utc(upload.upload_date).replace(
                microsecond=upload.upload_date.microsecond // 1000 * 1000
            ),
            metadata=user_metadata,
        )

    def _object_id(self, file_id: str) -> ObjectId:
        try:
            return ObjectId(file_id)
        except (InvalidId, TypeError):
            raise FileMissing(file_id) from None

    def _file_doc(self, file_id: str) -> dict:
        doc = self._files.find_one({"_id": self._object_id(file_id)})
        if doc is None:
            raise FileMissing(file_id)
        return doc

    def _record(self, doc: dict) -> StoredFile:
        meta = doc.get("metadata") or {}
        return StoredFile(
            file_id=str(doc["_id"]),
            filename=doc["filename"],
            length=int(doc["length"]),
            content_type=meta.get("contentType", "application/octet-stream"),
            sha256=meta.get("sha256", ""),
            uploaded_at=_utc(doc["uploadDate"]),
            metadata=dict(meta.get("user") or {}),
        )

    def info(self, file_id: str) -> StoredFile:
        return self._record(self._file_doc(file_id))

    def open(self, file_id: str) -> BinaryIO:
        record = self.info(file_id)
        try:
            grid_out = self._bucket.open_download_stream(ObjectId(record.file_id))
        except NoFile:
            raise FileMissing(file_id) from None
        reader = _VerifyingReader(grid_out, file_id=file_id, length=record.length, sha256=record.sha256)
        return io.BufferedReader(reader, buffer_size=BLOCK_BYTES)

    def get(self, file_id: str) -> bytes:
        record = self.info(file_id)
        try:
            grid_out = self._bucket.open_download_stream(ObjectId(record.file_id))
        except NoFile:
            raise FileMissing(file_id) from None
        return _read_verified(
            _VerifyingReader(grid_out, file_id=file_id, length=record.length, sha256=record.sha256)
        )

    def delete(self, file_id: str) -> None:
        try:
            oid = self._object_id(file_id)
        except FileMissing:
            return
        with contextlib.suppress(NoFile):
            # NoFile means there was no files document; pymongo has still removed any chunks.
            self._bucket.delete(oid)

    def exists(self, file_id: str) -> bool:
        try:
            oid = self._object_id(file_id)
        except FileMissing:
            return False
        return self._files.find_one({"_id": oid}, projection={"_id": 1}) is not None

    def ping(self) -> bool:
        try:
            with pymongo.timeout(PING_TIMEOUT_S):
                self._db.command("ping")
        except PyMongoError as exc:
            log.warning("frame store ping failed: %s", exc)
            return False
        return True

    def close(self) -> None:
        """Close the MongoClient if this store created it."""
        if self._owns_client:
            self._db.client.close()


# --------------------------------------------------------------------------- filesystem


class FileSystemStore:
    """Files under a directory: ``<dir>/<id[:2]>/<id>`` for bytes, ``<id>.json`` for the record."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _paths(self, file_id: str) -> tuple[Path, Path]:
        if not isinstance(file_id, str) or not _ID_RE.match(file_id):
            # Also keeps a crafted id such as "../../etc/passwd" out of the file system.
            raise FileMissing(file_id)
        shard = self.directory / file_id[:2]
        return shard / file_id, shard / f"{file_id}.json"

    @staticmethod
    def _fsync_dir(path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _write_atomic(self, target: Path, blocks: Any) -> None:
        """Write ``blocks`` to a temp file beside ``target``, fsync, rename; never leave the temp file."""
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as tmp:
                for block in blocks:
                    tmp.write(block)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            os.unlink(tmp_name)
            raise

    def put(
        self,
        data: bytes | BinaryIO,
        *,
        filename: str,
        content_type: str,
        metadata: dict | None = None,
        max_bytes: int | None = None,
    ) -> StoredFile:
        user_metadata = _check_put_arguments(data, filename, content_type, metadata, max_bytes)
        file_id = secrets.token_hex(12)
        data_path, record_path = self._paths(file_id)
        data_path.parent.mkdir(parents=True, exist_ok=True)
        sha = hashlib.sha256()
        length = 0

        def counted() -> Any:
            nonlocal length
            for block in _blocks(_as_reader(data), max_bytes, sha):
                length += len(block)
                yield block

        self._write_atomic(data_path, counted())
        now = datetime.now(UTC)
        record = StoredFile(
            file_id=file_id,
            filename=filename,
            length=length,
            content_type=content_type,
            sha256=sha.hexdigest(),
            # Millisecond precision, as in GridFS, so both stores report the same kind of time.
            uploaded_at=now.replace(microsecond=now.microsecond // 1000 * 1000),
            metadata=user_metadata,
        )
        document = {
            "filename": record.filename,
            "length": record.length,
            "content_type": record.content_type,
            "sha256": record.sha256,
            "uploaded_at": record.uploaded_at.isoformat(),
            "metadata": record.metadata,
        }
        try:
            self._write_atomic(record_path, [json.dumps(document).encode()])
            self._fsync_dir(data_path.parent)
        except BaseException:
            data_path.unlink()
            raise
        return record

    def info(self, file_id: str) -> StoredFile:
        _, record_path = self._paths(file_id)
        try:
            document = json.loads(record_path.read_bytes())
        except FileNotFoundError:
            raise FileMissing(file_id) from None
        return StoredFile(
            file_id=file_id,
            filename=document["filename"],
            length=document["length"],
            content_type=document["content_type"],
            sha256=document["sha256"],
            uploaded_at=datetime.fromisoformat(document["uploaded_at"]),
            metadata=document["metadata"],
        )

    def _verifying_reader(self, file_id: str) -> _VerifyingReader:
        record = self.info(file_id)
        data_path, _ = self._paths(file_id)
        try:
            raw = data_path.open("rb")
        except FileNotFoundError:
            raise FileCorrupt(f"file {file_id}: the record exists but its bytes are gone") from None
        return _VerifyingReader(raw, file_id=file_id, length=record.length, sha256=record.sha256)

    def open(self, file_id: str) -> BinaryIO:
        return io.BufferedReader(self._verifying_reader(file_id), buffer_size=BLOCK_BYTES)

    def get(self, file_id: str) -> bytes:
        return _read_verified(self._verifying_reader(file_id))

    def delete(self, file_id: str) -> None:
        try:
            data_path, record_path = self._paths(file_id)
        except FileMissing:
            return
        # Record first: once it is gone the file no longer exists for anyone.
        record_path.unlink(missing_ok=True)
        data_path.unlink(missing_ok=True)

    def exists(self, file_id: str) -> bool:
        try:
            _, record_path = self._paths(file_id)
        except FileMissing:
            return False
        return record_path.is_file()

    def ping(self) -> bool:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.warning("frame store directory %s is unusable: %s", self.directory, exc)
            return False
        return os.access(self.directory, os.W_OK | os.X_OK)

    def close(self) -> None:
        """Nothing to release; present so callers can close either store."""


# --------------------------------------------------------------------------- factory


def open_store(
    *,
    mongo_url: str | None,
    directory: Path,
    database: str = "c3s",
    bucket: str = "files",
    write_concern: str = "majority",
    client: Any = None,
) -> FrameStore:
    """Return the frame store the settings ask for.

    ``client`` (an existing MongoClient, or mongomock's in tests) wins over ``mongo_url``; with
    neither, files go to ``directory``. Building a MongoClient does not wait for the server, so
    this never blocks start-up; ``ping`` tells whether the server answers.
    """
    if client is None and mongo_url:
        client = pymongo.MongoClient(mongo_url, **mongo_client_options(mongo_url, write_concern=write_concern))
        return GridFSStore(client[database], bucket=bucket, write_concern=write_concern, owns_client=True)
    if client is not None:
        return GridFSStore(client[database], bucket=bucket, write_concern=write_concern)
    return FileSystemStore(directory)
