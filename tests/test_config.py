"""Settings come from the environment; a bad value names its variable."""

from pathlib import Path

import pytest

from c3s.config import Config, ConfigError


def test_embedded_default_needs_no_servers(tmp_path):
    config = Config.from_env({"C3S_INSTANCE_PATH": str(tmp_path)})
    assert config.effective_database_url == f"sqlite:///{tmp_path / 'c3s.sqlite3'}"
    assert config.mongo_url is None and config.is_embedded
    assert config.files_path == Path(tmp_path) / "files"


def test_real_services_are_switched_on_by_the_environment():
    config = Config.from_env({
        "C3S_DATABASE_URL": "postgresql://db/c3s", "C3S_MONGO_URL": "mongodb://a,b,c/?replicaSet=rs0",
        "C3S_REDIS_URL": "redis://r:6379/0", "C3S_BROKER_URL": "redis://r:6379/1",
        "C3S_MAX_UPLOAD_BYTES": "10_000_000", "C3S_READ_DATABASE_URLS": "postgresql://r1/c3s, postgresql://r2/c3s",
    })
    assert config.effective_database_url == "postgresql://db/c3s"
    assert not config.is_embedded and config.max_upload_bytes == 10_000_000
    assert config.read_database_urls == ("postgresql://r1/c3s", "postgresql://r2/c3s")


@pytest.mark.parametrize(("name", "value"), [
    ("C3S_DATABASE_URL", "mysql://x/y"),
    ("C3S_MONGO_URL", "http://mongo"),
    # Checked when the settings are read, not at the first upload (the store connects lazily).
    ("C3S_MONGO_URL", "mongodb://a,b/?retryWrites=false&replicaSet=rs0"),
    ("C3S_MONGO_URL", "mongodb://a/?w=0&replicaSet=rs0"),
    ("C3S_MONGO_URL", "mongodb://a/?replicaSet=rs0&notAnOption=1&authMechanism=NOPE"),
    ("C3S_MAX_UPLOAD_BYTES", "lots"),
    ("C3S_MAX_UPLOAD_BYTES", "10"),
    ("C3S_SECRET_KEY", "short"),
    ("C3S_MONGO_WRITE_CONCERN", "0"),
    ("C3S_TESTING", "perhaps"),
])
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Config.from_env({name: value})
