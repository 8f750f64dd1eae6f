"""MongoDB settings for the GridFS frame store: the URI (checked when the settings are read, so a
bad one stops start-up), the write concern, and the options C3S passes to ``MongoClient``."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pymongo
from pymongo.errors import ConfigurationError, InvalidURI
from pymongo.write_concern import WriteConcern

log = logging.getLogger("c3s.framestore")  # the store's log, where operators look for it

MONGO_URL_SETTING = "C3S_MONGO_URL"
WRITE_CONCERN_SETTING = "C3S_MONGO_WRITE_CONCERN"
# Server selection waits at most this long, so a request fails in seconds rather than the
# driver's default 30 s when the replica set has no primary; elections normally finish sooner.
SERVER_SELECTION_TIMEOUT_MS = 5000
CONNECT_TIMEOUT_MS = 5000


def parse_write_concern(value: str | int, *, setting: str = WRITE_CONCERN_SETTING) -> WriteConcern:
    """Parse ``"majority"`` or a number of members (``"1"``, ``"2"``, ...) into a WriteConcern.

    GridFS needs acknowledged writes (pymongo refuses ``w=0`` for a bucket), so zero is rejected.
    """
    raw = str(value).strip()
    if raw == "majority":
        return WriteConcern(w="majority")
    if raw.isdigit() and int(raw) >= 1:
        return WriteConcern(w=int(raw))
    raise ValueError(
        f"{setting} must be 'majority' or a number of replica-set members of at least 1 "
        f"(GridFS needs acknowledged writes), got {value!r}"
    )


def _uri_query_options(url: str) -> dict[str, str]:
    """The URI's query options with lower-cased names (MongoDB option names are case-insensitive)."""
    return {key.lower(): val for key, val in parse_qsl(urlsplit(url).query, keep_blank_values=True)}


def check_mongo_url(url: str) -> dict[str, str]:
    """Raise ValueError naming ``C3S_MONGO_URL`` unless ``url`` is a MongoDB URI GridFS can use
    (checked when the settings are read, so a bad one stops start-up); returns its query options,
    lower-cased names."""
    scheme = urlsplit(url).scheme
    if scheme not in ("mongodb", "mongodb+srv"):
        raise ValueError(f"{MONGO_URL_SETTING} must start with mongodb:// or mongodb+srv://, got {url!r}")
    if scheme == "mongodb":
        # mongodb+srv URIs are checked by MongoClient itself: parsing them here would query DNS.
        try:
            pymongo.uri_parser.parse_uri(url)
        except (InvalidURI, ConfigurationError, ValueError) as exc:
            raise ValueError(f"{MONGO_URL_SETTING} is not a valid MongoDB URI: {exc}") from exc
    query = _uri_query_options(url)
    if query.get("retrywrites", "true").lower() == "false":
        raise ValueError(f"{MONGO_URL_SETTING} sets retryWrites=false; GridFS uploads need retryable writes")
    if query.get("w") == "0":
        raise ValueError(f"{MONGO_URL_SETTING} sets w=0; GridFS needs acknowledged writes")
    return query


def mongo_client_options(url: str, *, write_concern: str = "majority") -> dict[str, Any]:
    """Validate a MongoDB URI and return the keyword arguments C3S passes to ``MongoClient``.

    The production deployment is a replica set: without ``replicaSet=`` in the URI (and not a
    ``mongodb+srv://`` URI, whose DNS TXT record usually names the set) the driver talks to one
    server only, so a warning is logged. Retryable writes and an acknowledged write concern are
    required for GridFS uploads to survive a failover, so a URI that turns them off is rejected.
    ``readPreference`` and the timeouts get C3S defaults unless the URI sets them.
    Raises ValueError naming ``C3S_MONGO_URL`` (or ``C3S_MONGO_WRITE_CONCERN``) for a bad value.
    """
    scheme = urlsplit(url).scheme
    query = check_mongo_url(url)
    if scheme == "mongodb" and not query.get("replicaset"):
        log.warning(
            "%s has no replicaSet= option: the frame store will talk to a single server, "
            "without failover; production expects a replica-set URI",
            MONGO_URL_SETTING,
        )
    options: dict[str, Any] = {
        "retryWrites": True,
        "retryReads": True,
        "w": parse_write_concern(write_concern).document["w"],
        "tz_aware": True,
        "appname": "c3s",
    }
    # Reads go to the primary while there is one (a frame just uploaded is found at once) and to a
    # secondary during an election, so playback keeps working while writes wait.
    defaults = {
        "readPreference": "primaryPreferred",
        "serverSelectionTimeoutMS": SERVER_SELECTION_TIMEOUT_MS,
        "connectTimeoutMS": CONNECT_TIMEOUT_MS,
    }
    options.update({name: val for name, val in defaults.items() if name.lower() not in query})
    return options
