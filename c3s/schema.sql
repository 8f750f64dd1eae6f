-- C3S PostgreSQL schema: the single source of truth. The SQLAlchemy models in c3s/models.py
-- mirror it, and tests/test_schema.py proves they agree. Every statement is idempotent, so
-- `c3s init-db` may run it on a live database.

CREATE TABLE IF NOT EXISTS users (
    id             BIGSERIAL PRIMARY KEY,
    email          TEXT UNIQUE,
    display_name   TEXT NOT NULL DEFAULT '',
    password_hash  TEXT,
    is_guest       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_login_at  TIMESTAMPTZ,
    -- A registered user logs in with email and password; a guest (a pixel phone that joined
    -- from a poster) has neither and authenticates with its device token.
    CONSTRAINT users_registered_has_credentials
        CHECK (is_guest OR (email IS NOT NULL AND password_hash IS NOT NULL)),
    CONSTRAINT users_email_lowercase CHECK (email = lower(email))
);

CREATE TABLE IF NOT EXISTS permissions (
    id           SMALLSERIAL PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    description  TEXT NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS methods (
    id           SMALLSERIAL PRIMARY KEY,
    code         TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    CONSTRAINT methods_code_known CHECK (code IN ('qr', 'blink', 'gps', 'sound', 'seat'))
);

CREATE TABLE IF NOT EXISTS scenes (
    id             BIGSERIAL PRIMARY KEY,
    name           TEXT NOT NULL,
    -- Deleting a user must not silently delete the shows they run: hand scenes over first.
    owner_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    method_id      SMALLINT NOT NULL REFERENCES methods (id) ON DELETE RESTRICT,
    width          DOUBLE PRECISION NOT NULL,
    height         DOUBLE PRECISION NOT NULL,
    units          TEXT NOT NULL DEFAULT 'm',
    status         TEXT NOT NULL DEFAULT 'calibrating',
    fit            TEXT NOT NULL DEFAULT 'contain',
    show_start_at  TIMESTAMPTZ,
    show_loop      BOOLEAN NOT NULL DEFAULT FALSE,
    geo_lat        DOUBLE PRECISION,
    geo_lon        DOUBLE PRECISION,
    geo_bearing_deg DOUBLE PRECISION,
    geo_metres_per_unit DOUBLE PRECISION,
    max_gps_accuracy_m DOUBLE PRECISION NOT NULL DEFAULT 15,
    temperature_c  DOUBLE PRECISION NOT NULL DEFAULT 20,
    -- Bumped whenever pixel positions change, so cached colour maps of an older layout are
    -- never served.
    layout_version INTEGER NOT NULL DEFAULT 0,
    -- The number the next joining pixel gets; numbers are never reused within a scene.
    next_pixel_number INTEGER NOT NULL DEFAULT 0,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT scenes_name_not_blank CHECK (length(btrim(name)) > 0),
    CONSTRAINT scenes_size_positive CHECK (width > 0 AND height > 0),
    CONSTRAINT scenes_units_known CHECK (units IN ('m', 'seat', 'ft')),
    CONSTRAINT scenes_status_known CHECK (status IN ('calibrating', 'ready', 'playing', 'ended')),
    CONSTRAINT scenes_fit_known CHECK (fit IN ('contain', 'cover', 'stretch')),
    CONSTRAINT scenes_geo_complete CHECK (
        (geo_lat IS NULL AND geo_lon IS NULL AND geo_bearing_deg IS NULL AND geo_metres_per_unit IS NULL)
        OR (geo_lat BETWEEN -90 AND 90 AND geo_lon BETWEEN -180 AND 180
            AND geo_bearing_deg IS NOT NULL AND geo_metres_per_unit > 0)),
    CONSTRAINT scenes_gps_accuracy_positive CHECK (max_gps_accuracy_m > 0),
    CONSTRAINT scenes_layout_version_nonnegative CHECK (layout_version >= 0),
    CONSTRAINT scenes_next_pixel_number_nonnegative CHECK (next_pixel_number >= 0),
    -- Target of the pixels' composite key, which lets a pixel's CHECK see the scene's size.
    CONSTRAINT scenes_id_size_key UNIQUE (id, width, height)
);
CREATE INDEX IF NOT EXISTS scenes_owner_idx ON scenes (owner_id);

-- Reference points with known scene coordinates (e.g. reference QR codes placed by the operator).
CREATE TABLE IF NOT EXISTS anchors (
    id        BIGSERIAL PRIMARY KEY,
    scene_id  BIGINT NOT NULL REFERENCES scenes (id) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    x         DOUBLE PRECISION NOT NULL,
    y         DOUBLE PRECISION NOT NULL,
    CONSTRAINT anchors_key_format CHECK (key ~ '^[A-Z0-9]{1,6}$'),
    CONSTRAINT anchors_scene_key_key UNIQUE (scene_id, key)
);

CREATE TABLE IF NOT EXISTS user_permissions (
    id             BIGSERIAL PRIMARY KEY,
    user_id        BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    permission_id  SMALLINT NOT NULL REFERENCES permissions (id) ON DELETE CASCADE,
    -- NULL: the right holds in every scene; otherwise it is limited to this scene.
    scene_id       BIGINT REFERENCES scenes (id) ON DELETE CASCADE,
    granted_by     BIGINT REFERENCES users (id) ON DELETE SET NULL,
    granted_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT user_permissions_grant_key UNIQUE NULLS NOT DISTINCT (user_id, permission_id, scene_id)
);
CREATE INDEX IF NOT EXISTS user_permissions_user_idx ON user_permissions (user_id);

CREATE TABLE IF NOT EXISTS api_tokens (
    id            BIGSERIAL PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- SHA-256 of the token; the token itself is shown once and never stored.
    token_hash    TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL DEFAULT 'session',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at    TIMESTAMPTZ NOT NULL,
    revoked_at    TIMESTAMPTZ,
    last_used_at  TIMESTAMPTZ,
    CONSTRAINT api_tokens_kind_known CHECK (kind IN ('session', 'device')),
    CONSTRAINT api_tokens_hash_format CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    CONSTRAINT api_tokens_expiry_after_creation CHECK (expires_at > created_at)
);
CREATE INDEX IF NOT EXISTS api_tokens_user_idx ON api_tokens (user_id);

CREATE TABLE IF NOT EXISTS pixels (
    id            BIGSERIAL PRIMARY KEY,
    scene_id      BIGINT NOT NULL,
    -- Copies of the scene's size, kept in step by ON UPDATE CASCADE, so that "coordinates
    -- inside the scene" is a plain CHECK rather than a trigger.
    scene_width   DOUBLE PRECISION NOT NULL,
    scene_height  DOUBLE PRECISION NOT NULL,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    number        INTEGER NOT NULL,
    status        TEXT NOT NULL DEFAULT 'joined',
    x             DOUBLE PRECISION,
    y             DOUBLE PRECISION,
    sigma         DOUBLE PRECISION,
    located_by    TEXT,
    confidence    DOUBLE PRECISION,
    located_at    TIMESTAMPTZ,
    excluded_reason TEXT,
    joined_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pixels_scene_fkey FOREIGN KEY (scene_id, scene_width, scene_height)
        REFERENCES scenes (id, width, height) ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT pixels_scene_user_key UNIQUE (scene_id, user_id),
    CONSTRAINT pixels_scene_number_key UNIQUE (scene_id, number),
    CONSTRAINT pixels_number_nonnegative CHECK (number >= 0),
    CONSTRAINT pixels_status_known CHECK (status IN ('joined', 'located', 'excluded', 'left')),
    CONSTRAINT pixels_position_complete CHECK (
        (x IS NULL AND y IS NULL AND located_by IS NULL AND located_at IS NULL)
        OR (x IS NOT NULL AND y IS NOT NULL AND located_by IS NOT NULL AND located_at IS NOT NULL)),
    CONSTRAINT pixels_inside_scene CHECK (
        x IS NULL OR (x BETWEEN 0 AND scene_width AND y BETWEEN 0 AND scene_height)),
    CONSTRAINT pixels_located_has_position CHECK (status <> 'located' OR x IS NOT NULL),
    CONSTRAINT pixels_located_by_known CHECK (located_by IN ('qr', 'blink', 'gps', 'sound', 'seat')),
    CONSTRAINT pixels_confidence_unit CHECK (confidence BETWEEN 0 AND 1),
    CONSTRAINT pixels_sigma_positive CHECK (sigma > 0)
);
-- Pixels of a scene by status (the show reads the located ones); a pixel by number is served by
-- pixels_scene_number_key.
CREATE INDEX IF NOT EXISTS pixels_scene_status_idx ON pixels (scene_id, status);
CREATE INDEX IF NOT EXISTS pixels_user_idx ON pixels (user_id);

CREATE TABLE IF NOT EXISTS frames (
    id           BIGSERIAL PRIMARY KEY,
    scene_id     BIGINT NOT NULL REFERENCES scenes (id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    duration_ms  INTEGER NOT NULL,
    -- The image lives in the file store (GridFS in production); one file per frame.
    file_id      TEXT NOT NULL UNIQUE,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT frames_scene_position_key UNIQUE (scene_id, position),
    CONSTRAINT frames_position_nonnegative CHECK (position >= 0),
    CONSTRAINT frames_duration_positive CHECK (duration_ms > 0),
    CONSTRAINT frames_size_positive CHECK (width > 0 AND height > 0)
);

-- An observer's upload (photo, video or a burst) and the state of the job that locates pixels in it.
CREATE TABLE IF NOT EXISTS locate_jobs (
    id            BIGSERIAL PRIMARY KEY,
    scene_id      BIGINT NOT NULL REFERENCES scenes (id) ON DELETE CASCADE,
    observer_id   BIGINT REFERENCES users (id) ON DELETE SET NULL,
    method        TEXT NOT NULL,
    file_id       TEXT NOT NULL UNIQUE,
    filename      TEXT NOT NULL DEFAULT '',
    content_type  TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL DEFAULT 'queued',
    reason        TEXT,
    stats         JSONB NOT NULL DEFAULT '{}'::jsonb,
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at    TIMESTAMPTZ,
    finished_at   TIMESTAMPTZ,
    CONSTRAINT locate_jobs_method_known CHECK (method IN ('qr', 'blink', 'gps', 'sound', 'seat')),
    CONSTRAINT locate_jobs_status_known CHECK (status IN ('queued', 'running', 'done', 'failed')),
    CONSTRAINT locate_jobs_failed_has_reason CHECK (status <> 'failed' OR reason IS NOT NULL),
    CONSTRAINT locate_jobs_attempts_nonnegative CHECK (attempts >= 0)
);
CREATE INDEX IF NOT EXISTS locate_jobs_scene_idx ON locate_jobs (scene_id, created_at);
CREATE INDEX IF NOT EXISTS locate_jobs_status_idx ON locate_jobs (status) WHERE status IN ('queued', 'running');

-- One sighting of one pixel: where a job saw it, in scene units, with its uncertainty.
CREATE TABLE IF NOT EXISTS observations (
    id           BIGSERIAL PRIMARY KEY,
    job_id       BIGINT NOT NULL REFERENCES locate_jobs (id) ON DELETE CASCADE,
    pixel_id     BIGINT NOT NULL REFERENCES pixels (id) ON DELETE CASCADE,
    method       TEXT NOT NULL,
    x            DOUBLE PRECISION NOT NULL,
    y            DOUBLE PRECISION NOT NULL,
    sigma        DOUBLE PRECISION NOT NULL,
    x_img        DOUBLE PRECISION,
    y_img        DOUBLE PRECISION,
    confidence   DOUBLE PRECISION NOT NULL,
    observed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A job is processed idempotently: it sees each pixel at most once.
    CONSTRAINT observations_job_pixel_key UNIQUE (job_id, pixel_id),
    CONSTRAINT observations_method_known CHECK (method IN ('qr', 'blink', 'gps', 'sound', 'seat')),
    CONSTRAINT observations_sigma_positive CHECK (sigma > 0),
    CONSTRAINT observations_confidence_unit CHECK (confidence BETWEEN 0 AND 1)
);
CREATE INDEX IF NOT EXISTS observations_pixel_idx ON observations (pixel_id);

INSERT INTO permissions (name, description) VALUES
    ('pixel', 'join scenes as a pixel'),
    ('observer', 'upload calibration photos and videos of a scene'),
    ('moderator', 'exclude a user from a scene'),
    ('scene_admin', 'create and edit scenes, upload frames, start the show'),
    ('admin', 'grant and revoke permissions')
ON CONFLICT (name) DO NOTHING;

INSERT INTO methods (code, name, description) VALUES
    ('qr', 'QR code', 'each phone shows a QR code; observers photograph the crowd'),
    ('blink', 'Blinking code', 'each phone blinks a colour code; observers film the crowd'),
    ('gps', 'GPS', 'each phone reports its satellite position (open-air scenes)'),
    ('sound', 'Sound', 'each phone hears chirps from speakers at known positions'),
    ('seat', 'Seat number', 'each person enters the seat they sit in')
ON CONFLICT (code) DO NOTHING;

-- A scene's seat map: every seat with its centre in scene units. Labels are stored normalised
-- (upper case, no leading zeros) so that a typed 'a-07-3' finds seat A-7-3.
CREATE TABLE IF NOT EXISTS seats (
    id        BIGSERIAL PRIMARY KEY,
    scene_id  BIGINT NOT NULL REFERENCES scenes (id) ON DELETE CASCADE,
    section   TEXT NOT NULL,
    row       TEXT NOT NULL,
    seat      TEXT NOT NULL,
    x         DOUBLE PRECISION NOT NULL,
    y         DOUBLE PRECISION NOT NULL,
    -- Distance to the nearest other seat: the size of "somewhere in this seat".
    spacing   DOUBLE PRECISION NOT NULL,
    CONSTRAINT seats_scene_label_key UNIQUE (scene_id, section, row, seat),
    CONSTRAINT seats_spacing_positive CHECK (spacing > 0)
);

-- A pixel's claim to sit in a seat. A pixel claims one seat at a time; a seat is held (accepted)
-- by at most one pixel. A second claimant is kept, not refused silently: both claims are flagged
-- as a conflict for the operator.
CREATE TABLE IF NOT EXISTS seat_claims (
    id          BIGSERIAL PRIMARY KEY,
    seat_id     BIGINT NOT NULL REFERENCES seats (id) ON DELETE CASCADE,
    pixel_id    BIGINT NOT NULL REFERENCES pixels (id) ON DELETE CASCADE,
    accepted    BOOLEAN NOT NULL DEFAULT FALSE,
    conflict    BOOLEAN NOT NULL DEFAULT FALSE,
    claimed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT seat_claims_pixel_key UNIQUE (pixel_id)
);
CREATE INDEX IF NOT EXISTS seat_claims_seat_idx ON seat_claims (seat_id);
CREATE UNIQUE INDEX IF NOT EXISTS seat_claims_one_holder_idx ON seat_claims (seat_id) WHERE accepted;

-- Speakers that play the sound method's chirps; `index` is the speaker's slot in the schedule.
CREATE TABLE IF NOT EXISTS speakers (
    id        BIGSERIAL PRIMARY KEY,
    scene_id  BIGINT NOT NULL REFERENCES scenes (id) ON DELETE CASCADE,
    index     INTEGER NOT NULL,
    x         DOUBLE PRECISION NOT NULL,
    y         DOUBLE PRECISION NOT NULL,
    CONSTRAINT speakers_scene_index_key UNIQUE (scene_id, index),
    CONSTRAINT speakers_index_nonnegative CHECK (index >= 0)
);

-- The seat a camera-located pixel snapped to, and how sure that assignment is (0..1).
ALTER TABLE pixels ADD COLUMN IF NOT EXISTS seat_id BIGINT REFERENCES seats (id) ON DELETE SET NULL;
ALTER TABLE pixels ADD COLUMN IF NOT EXISTS seat_confidence DOUBLE PRECISION;
CREATE INDEX IF NOT EXISTS pixels_seat_idx ON pixels (seat_id);

-- Bumped by every frame upload, retime, reorder and delete; with layout_version it names the
-- cached colour maps (c3s/show.py), so maps of older frames are never served.
ALTER TABLE scenes ADD COLUMN IF NOT EXISTS frames_version INTEGER NOT NULL DEFAULT 0
    CONSTRAINT scenes_frames_version_nonnegative CHECK (frames_version >= 0);

-- Camera-closed sync. A blink clip measures when each phone's light changed relative to the
-- server clock (ms, positive = late) and records the correction that phone was playing with
-- then; a pixel's fused offset is what it plays early by (c3s/locate/fusion.py).
ALTER TABLE observations ADD COLUMN IF NOT EXISTS offset_ms DOUBLE PRECISION
    CONSTRAINT observations_offset_bounded CHECK (offset_ms BETWEEN -1000 AND 1000);
ALTER TABLE observations ADD COLUMN IF NOT EXISTS correction_ms DOUBLE PRECISION
    CONSTRAINT observations_correction_bounded CHECK (correction_ms BETWEEN -1000 AND 1000);
ALTER TABLE pixels ADD COLUMN IF NOT EXISTS offset_ms DOUBLE PRECISION
    CONSTRAINT pixels_offset_bounded CHECK (offset_ms BETWEEN -1000 AND 1000);
-- A sync burst inside the show: from this time, for this long, every phone plays its blink
-- pattern (its correction applied) instead of the show, so a clip of the crowd is a sync check.
ALTER TABLE scenes ADD COLUMN IF NOT EXISTS sync_burst_at TIMESTAMPTZ;
ALTER TABLE scenes ADD COLUMN IF NOT EXISTS sync_burst_ms INTEGER
    CONSTRAINT scenes_sync_burst_bounded CHECK (sync_burst_ms BETWEEN 1 AND 60000);
-- The phone's last reported clock offset uncertainty (clock.js uncertaintyMs, ms; PUT .../me/clock).
ALTER TABLE pixels ADD COLUMN IF NOT EXISTS clock_uncertainty_ms DOUBLE PRECISION;
-- Sound in 3-D venues: speaker heights (scene units) and playback delays (a PA zone's delay
-- alignment), the phone height at a seat (scene units; NULL: not known), and the air's
-- temperature range (NULL maximum: temperature_c is a single reading) and humidity (NULL: unknown).
ALTER TABLE speakers ADD COLUMN IF NOT EXISTS z DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE speakers ADD COLUMN IF NOT EXISTS delay_ms DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE seats ADD COLUMN IF NOT EXISTS z DOUBLE PRECISION;
ALTER TABLE scenes ADD COLUMN IF NOT EXISTS temperature_max_c DOUBLE PRECISION;
ALTER TABLE scenes ADD COLUMN IF NOT EXISTS humidity_pct DOUBLE PRECISION;

-- A running locate job's worker stamps this every few seconds (c3s/tasks/heartbeat.py); the
-- sweep re-queues a running job whose stamp is older than C3S_JOB_HEARTBEAT_TIMEOUT_S: its
-- worker died (SIGKILL, power loss) without giving the message back.
ALTER TABLE locate_jobs ADD COLUMN IF NOT EXISTS heartbeat_at TIMESTAMPTZ;

-- A frame video being decoded by the show worker: the upload answers 202 with this job, the
-- job reports its progress (0..1) and, once done, the ids of the frames it appended.
CREATE TABLE IF NOT EXISTS frame_jobs (
    id            BIGSERIAL PRIMARY KEY,
    scene_id      BIGINT NOT NULL REFERENCES scenes (id) ON DELETE CASCADE,
    user_id       BIGINT REFERENCES users (id) ON DELETE SET NULL,
    file_id       TEXT NOT NULL UNIQUE,
    filename      TEXT NOT NULL DEFAULT '',
    content_type  TEXT NOT NULL DEFAULT '',
    duration_ms   INTEGER,
    status        TEXT NOT NULL DEFAULT 'queued',
    reason        TEXT,
    progress      DOUBLE PRECISION NOT NULL DEFAULT 0,
    frame_ids     JSONB NOT NULL DEFAULT '[]'::jsonb,
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at    TIMESTAMPTZ,
    finished_at   TIMESTAMPTZ,
    CONSTRAINT frame_jobs_status_known CHECK (status IN ('queued', 'running', 'done', 'failed')),
    CONSTRAINT frame_jobs_failed_has_reason CHECK (status <> 'failed' OR reason IS NOT NULL),
    CONSTRAINT frame_jobs_progress_fraction CHECK (progress BETWEEN 0 AND 1),
    CONSTRAINT frame_jobs_duration_positive CHECK (duration_ms IS NULL OR duration_ms > 0),
    CONSTRAINT frame_jobs_attempts_nonnegative CHECK (attempts >= 0)
);
CREATE INDEX IF NOT EXISTS frame_jobs_scene_idx ON frame_jobs (scene_id, created_at);
-- A frame job's heartbeat, as for locate jobs: the sweep re-queues a decoding whose worker died.
ALTER TABLE frame_jobs ADD COLUMN IF NOT EXISTS heartbeat_at TIMESTAMPTZ;

-- How often a job's worker was lost (its heartbeat stopped: SIGKILL, out of memory, a machine
-- lost). The sweep runs a job once more after its first loss and fails it on the second
-- (c3s/locate/jobs.py sweep_stale_jobs). `attempts` counts every start, the task's own retries
-- after transient errors included, so it is not this.
ALTER TABLE locate_jobs ADD COLUMN IF NOT EXISTS worker_losses INTEGER NOT NULL DEFAULT 0
    CONSTRAINT locate_jobs_worker_losses_nonnegative CHECK (worker_losses >= 0);
ALTER TABLE frame_jobs ADD COLUMN IF NOT EXISTS worker_losses INTEGER NOT NULL DEFAULT 0
    CONSTRAINT frame_jobs_worker_losses_nonnegative CHECK (worker_losses >= 0);
