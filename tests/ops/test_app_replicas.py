"""The application on a real primary with two standbys: writes go to the primary, reads are
served by a standby while it is fresh enough and by the primary when it lags or is down, and
after the primary stops and a standby is promoted the application carries on against the new
primary with every committed observation."""

from __future__ import annotations

import time

from sqlalchemy import text

from c3s.db import init_db, make_engine
from c3s.locate.fusion import Sighting, commit_sightings
from c3s.models import LocateJob, Pixel, Scene
from c3s.web import create_app
from tests.helpers.factories import auth, make_scene, make_user

from .conftest import WAIT_SECONDS, wait_until


def _url(*nodes, read_write=False) -> str:
    hosts = "&".join(f"host=127.0.0.1:{n.port}" for n in nodes)
    attrs = "&target_session_attrs=read-write" if read_write else ""
    return f"postgresql://{nodes[0].superuser}@/postgres?{hosts}{attrs}&connect_timeout=3"


def test_reads_on_standbys_writes_on_primary_and_failover(cluster_factory, tmp_path):
    cluster = cluster_factory()
    primary, standby1, standby2 = cluster.nodes
    engine = make_engine(_url(primary))
    init_db(engine)
    engine.dispose()
    app = create_app({
        "database_url": _url(primary, standby1, read_write=True),
        "read_database_urls": (_url(standby1), _url(standby2)),
        "replica_max_lag_s": 30.0, "instance_path": tmp_path,
    })
    database = app.extensions["c3s"].database
    client = app.test_client()
    with database.session() as session:
        _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    cluster.wait_replayed()

    # Reads come from standbys, in turn.
    served_by = set()
    for _ in range(4):
        with database.read_session() as read:
            served_by.add(read.execute(text("SELECT inet_server_port()")).scalar())
    assert served_by == {standby1.port, standby2.port}

    # A standby whose replay is paused keeps serving while within the bound (and shows the old
    # name, proving the read went there), then is dropped once it lags beyond it.
    for node in (standby1, standby2):
        node.query("SELECT pg_wal_replay_pause()", dbname="postgres")
    primary.query("UPDATE scenes SET name = 'Renamed' WHERE id = %s", (scene["id"],), dbname="postgres")
    time.sleep(0.3)
    assert client.get(f"/api/scenes/{scene['id']}", headers=auth(owner)).json["name"] == "Stand A"
    database.max_lag_s = 0.5
    time.sleep(1.2)
    for replica in database.replicas:
        replica.checked_at = float("-inf")
    assert client.get(f"/api/scenes/{scene['id']}", headers=auth(owner)).json["name"] == "Renamed"
    for node in (standby1, standby2):
        node.query("SELECT pg_wal_replay_resume()", dbname="postgres")
    database.max_lag_s = 30.0

    # A committed observation survives the failover.
    guest = client.post("/api/guests", json={}).json["token"]
    client.post(f"/api/scenes/{scene['id']}/join", headers=auth(guest))
    with database.session() as session:
        scene_row = session.get(Scene, scene["id"])
        job = LocateJob(scene_id=scene_row.id, method="qr", file_id="f-1")
        session.add(job)
        session.flush()
        pixel = session.query(Pixel).one()
        commit_sightings(session, job, scene_row, [Sighting(pixel.id, 12.5, 7.5, 0.05, 1.0)])
        session.commit()
    cluster.wait_replayed()

    cluster.pg_ctl(primary, "-m", "fast", "-w", "stop")
    cluster.script("postgres/promote.sh", **cluster.standby_env(standby1))
    wait_until(lambda: standby1.scalar("SELECT NOT pg_is_in_recovery()", dbname="postgres"),
               WAIT_SECONDS, "standby1 to become the primary")
    # Writes on the new primary wait for a synchronous standby: standby2 follows it.
    cluster.script("postgres/follow.sh", STANDBY_NAME="standby2", STANDBY_PORT=str(standby2.port),
                   PRIMARY_PORT=str(standby1.port))

    second = client.post("/api/guests", json={}).json["token"]
    joined = client.post(f"/api/scenes/{scene['id']}/join", headers=auth(second))
    assert joined.status_code == 201 and joined.json["number"] == 1
    assert standby1.query("SELECT x, y, status FROM pixels WHERE number = 0", dbname="postgres") == [
        (12.5, 7.5, "located")]
    assert standby1.scalar("SELECT count(*) FROM observations", dbname="postgres") == 1
    database.dispose()
