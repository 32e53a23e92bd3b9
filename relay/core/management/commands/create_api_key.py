from django.core.management.base import BaseCommand

from relay.core.models import ApiKey, Organization


class Command(BaseCommand):
    help = "Create an API key for an organization (created if needed). Prints the raw key on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Organization name")
        parser.add_argument("--name", default="default", help="A label for the key")

    def handle(self, *args, org, name, **options):
        organization, created = Organization.objects.get_or_create(name=org)
        _, raw = ApiKey.objects.create_key(organization, name)
        verb = "Created" if created else "Using"
        self.stdout.write(f"{verb} organization {organization.name} ({organization.id}); new key below.")
        self.stdout.write(raw)
