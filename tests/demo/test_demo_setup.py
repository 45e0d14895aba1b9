"""``manage.py demo_setup`` and the filesystem broker `make demo` uses when no Redis is configured."""

import ast
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from linking.models import Parent

BASE_DIR = Path(__file__).resolve().parents[2]


def snapshot():
    User = get_user_model()
    return (
        sorted(User.objects.values_list("pk", "email", "password", "is_staff", "is_superuser")),
        sorted(EmailAddress.objects.values_list("pk", "user_id", "email", "verified", "primary")),
        sorted(Parent.objects.values_list("pk", "user_id", "name")),
    )


@pytest.mark.django_db
def test_it_refuses_to_make_known_passwords_without_debug(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DEBUG=1"):
        call_command("demo_setup")

    assert not get_user_model().objects.exists()


@pytest.mark.django_db
def test_it_creates_a_verified_parent_and_a_staff_superuser(settings):
    settings.DEBUG = True

    call_command("demo_setup", stdout=StringIO())

    parent = Parent.objects.select_related("user").get(user__email="david.chen@example.com")
    assert parent.name == "David Chen"
    assert parent.user.check_password("parent-demo")
    assert EmailAddress.objects.filter(user=parent.user, verified=True, primary=True).exists()
    staff = get_user_model().objects.get(email="staff@example.com")
    assert staff.is_staff and staff.is_superuser
    assert staff.check_password("staff-demo")
    assert not Parent.objects.filter(user=staff).exists()


@pytest.mark.django_db
def test_it_changes_nothing_the_second_time(settings, capsys):
    settings.DEBUG = True
    call_command("demo_setup")
    before = snapshot()

    call_command("demo_setup")

    assert snapshot() == before
    assert "already there" in capsys.readouterr().out


def test_the_filesystem_broker_gets_its_folders_under_var():
    code = (
        "import os; os.environ['DJANGO_SETTINGS_MODULE'] = 'portal.settings'; "
        "from django.conf import settings; print(repr(settings.CELERY_BROKER_TRANSPORT_OPTIONS))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": os.environ.get("PATH", ""), "CELERY_BROKER_URL": "filesystem://", "SECRET_KEY": "x"},
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    options = ast.literal_eval(result.stdout.strip())
    broker = BASE_DIR / "var" / "broker"
    assert options["data_folder_in"] == options["data_folder_out"] == str(broker / "queue")
    assert options["processed_folder"] == str(broker / "processed")
    for key in ("data_folder_in", "processed_folder", "control_folder"):
        assert Path(options[key]).is_dir()
