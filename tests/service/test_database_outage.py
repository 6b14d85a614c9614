"""A PostgreSQL outage answers 503 ``database_unavailable`` with ``Retry-After``, like the Redis
and storage outages, and stores nothing: the web process the cluster runs against a private
PostgreSQL that is stopped (a fast shutdown, as a failover does) and started again."""

from pathlib import Path

import pytest
import requests
from conftest import MEDIA_ROOT, encode, photo_like
from test_job_faults import FAST, private_postgres  # noqa: F401 - a fixture

from config.launch import SERVERS


def uploads() -> set[str]:
    folder = Path(MEDIA_ROOT) / "uploads"
    return {path.name for path in folder.iterdir()} if folder.exists() else set()


@pytest.mark.parametrize("server", SERVERS)
def test_post_and_get_while_postgres_is_down_answer_503_and_store_nothing(processes, private_postgres, server):
    pg = private_postgres
    env = {**FAST, "DATABASE_URL": pg.url}
    migrate = processes.launch("migrate", "migrate", env=env)
    assert migrate.wait(timeout=120) == 0, migrate.log()
    _, url = processes.web(server, env=env)
    image = encode(photo_like(64, 48))
    created = requests.post(f"{url}/api/jobs", files={"image": ("a.png", image)}, timeout=60)
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    stored = uploads()

    pg.stop()
    posted = requests.post(f"{url}/api/jobs", files={"image": ("a.png", image)}, timeout=60)
    got = requests.get(f"{url}/api/jobs/{job_id}", timeout=60)
    print(f"{server}: POST {posted.status_code} {posted.text[:200]}; GET {got.status_code}")
    for response in (posted, got):
        assert response.status_code == 503, response.text[:300]
        assert response.json()["error"] == "database_unavailable"
        assert response.headers["Retry-After"] == "5"
    assert uploads() == stored  # the upload was stored before the row failed, and withdrawn

    pg.start()
    assert requests.get(f"{url}/api/jobs/{job_id}", timeout=60).status_code == 200
    assert requests.post(f"{url}/api/jobs", files={"image": ("a.png", image)}, timeout=60).status_code == 201
