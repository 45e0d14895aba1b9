import pytest
import redis

pytestmark = pytest.mark.services


def test_it_runs_a_query_on_postgresql(postgres):
    assert postgres.vendor == "postgresql"
    with postgres.cursor() as cursor:
        cursor.execute("SELECT 1 + 1")
        assert cursor.fetchone() == (2,)


def test_it_gets_a_pong_from_redis(redis_url):
    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    try:
        assert client.ping() is True
    finally:
        client.close()
