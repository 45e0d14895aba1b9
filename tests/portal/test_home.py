import pytest

# The home page asks the database which sign-in providers (Canvas, for students) are configured.
pytestmark = pytest.mark.django_db


def test_it_shows_the_home_page_to_a_visitor(client):
    response = client.get("/")

    assert response.status_code == 200
    assert b"Canvas family portal" in response.content
    assert b'name="viewport"' in response.content


def test_it_offers_a_visitor_sign_in_and_sign_up(client):
    response = client.get("/")

    assert b'href="/accounts/login/"' in response.content
    assert b'href="/accounts/signup/"' in response.content
