"""DATABASE_URL: parsed for the settings, checked by `relayctl` before anything uses it, and built back from
the settings for a subprocess (a worker, a web server) that must use this process's database.

`python -m relay.database` prints the database a command will use in one line and exits 1, also in one
line, when DATABASE_URL is malformed or its server does not answer (instead of a traceback from deep
inside Django's first query).
"""

from __future__ import annotations

import os
import sys
from urllib.parse import parse_qsl, quote, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

SCHEMES = {"postgres", "postgresql", "pgsql"}


class DatabaseUrlError(ImproperlyConfigured):
    """The settings module raises it as is: Django reports an ImproperlyConfigured."""


def parse_database_url(url: str) -> dict:
    parsed = urlparse(url)
    if parsed.scheme not in SCHEMES:
        raise DatabaseUrlError(f"DATABASE_URL must be a postgres:// URL, got scheme {parsed.scheme!r}")
    try:
        port = parsed.port
    except ValueError as error:
        raise DatabaseUrlError(f"DATABASE_URL has a bad port: {error}")
    options = dict(parse_qsl(parsed.query))
    host = unquote(parsed.hostname or "") or options.pop("host", "")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")) or "postgres",
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": host,
        "PORT": str(port or ""),
        "OPTIONS": options,
    }


def database_url(name: str | None = None) -> str:
    """The URL of Django's default database (in tests and the bench: the database they created), or of the
    database `name` on the same server. Django-only OPTIONS (the pool, binding) are left out."""
    from django.conf import settings

    db = {**settings.DATABASES["default"], **({"NAME": name} if name else {})}
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or ""
    if host.startswith("/"):  # a unix socket directory (the embedded server)
        return f"postgres://{auth}@:{db['PORT']}/{quote(db['NAME'], safe='')}?host={quote(host, safe='')}"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}@{host or 'localhost'}{port}/{quote(db['NAME'], safe='')}"


def describe(url: str) -> str:
    """The URL without its password, for printing."""
    parsed = urlparse(url)
    if parsed.password is None:
        return url
    netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@", 1)
    return parsed._replace(netloc=netloc).geturl()


def check(url: str, timeout: int = 5) -> None:
    """Connect once; raise DatabaseUrlError with the server's answer in one line."""
    import psycopg

    database = parse_database_url(url)
    params = {"dbname": database["NAME"], "user": database["USER"] or None, "password": database["PASSWORD"] or None,
              "host": database["HOST"] or None, "port": database["PORT"] or None, **database["OPTIONS"]}
    try:
        psycopg.connect(connect_timeout=timeout, **{k: v for k, v in params.items() if v is not None}).close()
    except psycopg.Error as error:
        reason = " ".join(str(error).split())
        raise DatabaseUrlError(f"DATABASE_URL {describe(url)} does not answer: {reason}")


def main(argv: list[str]) -> int:
    """argv[0], if given, says where DATABASE_URL came from (relayctl test finds a local server itself)."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        var_dir = os.environ.get("RELAY_VAR_DIR", "./var")
        print(f"relayctl: database: the embedded PostgreSQL under {var_dir.rstrip('/')}/pg (DATABASE_URL is unset)",
              file=sys.stderr)
        return 0
    try:
        check(url)
    except DatabaseUrlError as error:
        print(f"relayctl: {error} (fix or unset DATABASE_URL; unset uses the embedded PostgreSQL)", file=sys.stderr)
        return 1
    print(f"relayctl: database: {describe(url)} ({argv[0] if argv else 'from DATABASE_URL'})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
