"""The suite reaches no address but loopback (see the guard in conftest.py)."""

import socket

from tests.conftest import REFUSED_ADDRESSES, is_loopback


def test_loopback_addresses_are_allowed():
    assert is_loopback(socket.AF_INET, ("127.0.0.1", 5432))
    assert is_loopback(socket.AF_INET, ("127.5.5.5", 80))
    assert is_loopback(socket.AF_INET6, ("::1", 6379, 0, 0))
    assert is_loopback(socket.AF_INET, ("localhost", 8001))
    assert is_loopback(socket.AF_UNIX, "/var/run/postgresql/.s.PGSQL.5432")


def test_any_other_address_or_host_name_is_refused():
    assert not is_loopback(socket.AF_INET, ("192.0.2.10", 443))
    assert not is_loopback(socket.AF_INET, ("10.0.0.1", 80))
    assert not is_loopback(socket.AF_INET6, ("2001:db8::1", 443, 0, 0))
    assert not is_loopback(socket.AF_INET, ("canvas.example.edu", 443))


def test_the_guard_is_installed_on_every_socket_and_refuses_before_connecting():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        refused_before = len(REFUSED_ADDRESSES)
        try:
            # A host name is refused before it is even resolved, so nothing leaves the machine.
            sock.connect(("canvas.example.edu", 443))
        except ConnectionRefusedError as exc:
            assert "loopback only" in str(exc)
        else:
            raise AssertionError("the guard let a non-loopback connection through")
        REFUSED_ADDRESSES[refused_before:] = []  # this one was deliberate
