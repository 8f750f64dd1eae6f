"""Where the tests find the real services: PostgreSQL (an admin URL; each session creates its
own database), Redis and the Celery broker, each overridable from the environment."""

import os
import uuid

ADMIN_URL = os.environ.get("C3S_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("C3S_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BROKER_URL = os.environ.get("C3S_TEST_BROKER_URL", "redis://127.0.0.1:6379/14")
# Each test run queues under its own prefix, so runs sharing the Redis never take each other's jobs.
BROKER_KEY_PREFIX = f"c3s-test-{uuid.uuid4().hex[:8]}:"
