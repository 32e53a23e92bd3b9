import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from contacts.models import Channel, SocialAccount
from relay.core.models import ApiKey, Organization, hash_api_key


class Command(BaseCommand):
    help = "Local development only: a demo organization, API key, sandbox account and admin login."

    def handle(self, *args, **options):
        var = settings.VAR_DIR
        var.mkdir(parents=True, exist_ok=True)
        org, _ = Organization.objects.get_or_create(name="demo")
        SocialAccount.objects.get_or_create(
            organization=org, channel=Channel.INSTAGRAM, external_id="demo-ig",
            defaults={"name": "Demo Instagram (sandbox)"},
        )

        # The raw key is kept in ./var so repeated `up` runs print the same working key.
        key_file = var / "demo_api_key"
        raw = key_file.read_text().strip() if key_file.exists() else ""
        if not raw or not ApiKey.objects.filter(key_hash=hash_api_key(raw), revoked_at__isnull=True).exists():
            _, raw = ApiKey.objects.create_key(org, "demo (relayctl up)")
            key_file.write_text(raw)
            key_file.chmod(0o600)

        password_file = var / "admin_password"
        password = password_file.read_text().strip() if password_file.exists() else secrets.token_urlsafe(12)
        User = get_user_model()
        user = User.objects.filter(username="admin").first() or User(username="admin", is_staff=True,
                                                                      is_superuser=True)
        user.set_password(password)
        user.save()
        password_file.write_text(password)
        password_file.chmod(0o600)

        call_command("setup_schedules", stdout=self.stderr)  # celery-beat's scheduler tick
        account = SocialAccount.objects.get(organization=org, external_id="demo-ig")
        port = os.environ.get("PORT", "8000")  # where `relayctl up` serves
        self.stdout.write(
            "\n".join([
                "",
                f"  Organization : {org.name} ({org.id})",
                f"  Sandbox acct : {account.id} (instagram)",
                f"  API key      : {raw}",
                f"  Admin        : http://127.0.0.1:{port}/admin/  user admin  password {password}",
                "",
            ])
        )
