"""Small builders for test data. Each returns a saved row; pass keyword overrides for what matters."""

import itertools

from django.contrib.admin.utils import quote
from django.urls import reverse

from contacts.models import Channel, Contact, ContactIdentity, Conversation, SocialAccount
from relay.core.models import ApiKey, Organization

_seq = itertools.count(1)


def organization(name=None):
    return Organization.objects.create(name=name or f"org-{next(_seq)}")


def api_key(org, name="test"):
    return ApiKey.objects.create_key(org, name)


def social_account(org, channel=Channel.INSTAGRAM, **overrides):
    n = next(_seq)
    fields = {"name": f"Account {n}", "external_id": f"ext-{n}", "channel": channel, **overrides}
    return SocialAccount.objects.create(organization=org, **fields)


def contact(org, account=None, platform_user_id=None, **overrides):
    n = next(_seq)
    fields = {"name": f"Contact {n}", **overrides}
    row = Contact.objects.create(organization=org, **fields)
    if account is not None:
        ContactIdentity.objects.create(contact=row, social_account=account,
                                       platform_user_id=platform_user_id or f"psid-{n}")
    return row


def conversation(contact_row, account):
    conv, _ = Conversation.objects.get_or_create(
        organization=contact_row.organization, contact=contact_row, social_account=account
    )
    return conv


def automation(org, graph=None, status="draft", channel=Channel.INSTAGRAM, **overrides):
    """An Automation row; `graph` is stored as given (use automations.graph.service.save_graph to validate)."""
    from automations.models import Automation, empty_graph

    n = next(_seq)
    fields = {"name": f"Automation {n}", "channel": channel, "status": status, "graph": graph or empty_graph(),
              **overrides}
    return Automation.objects.create(organization=org, **fields)


def entrypoint(automation_row, kind="dm_received", **overrides):
    from automations.models import Entrypoint

    fields = {"channel": automation_row.channel, "kind": kind, **overrides}
    return Entrypoint.objects.create(organization=automation_row.organization, automation=automation_row, **fields)


def binding(automation_row, account, binding_type="default_reply", **overrides):
    from automations.models import Binding

    return Binding.objects.create(organization=automation_row.organization, automation=automation_row,
                                  social_account=account, binding_type=binding_type, **overrides)


def flow(nodes, edges=(), root=None):
    """A graph dict from (key, kind, config) tuples and (from_node, from_port, to_node) edges; the root
    defaults to the first node. Stored as given (not validated), so tests can build broken graphs too."""
    node_dicts = [{"key": key, "kind": kind, "config": config or {}} for key, kind, config in nodes]
    edge_dicts = [{"from_node": a, "from_port": port, "to_node": b, "to_port": "in"} for a, port, b in edges]
    return {"nodes": node_dicts, "edges": edge_dicts, "root_node_key": root or (nodes[0][0] if nodes else None)}


class local_http_server:  # noqa: N801 - used like a function: `with local_http_server(routes) as server:`
    """A real HTTP server on 127.0.0.1 in a thread. `routes` maps a path to (status, headers, body bytes)
    or a callable(handler) -> that tuple; every request is appended to `server.requests`."""

    def __init__(self, routes=None):
        self.routes = routes or {}
        self.requests = []

    def __enter__(self):
        import http.server
        import threading

        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                       "body": body})
                route = outer.routes.get(self.path.split("?")[0], (404, {}, b"not found"))
                status, headers, payload = route(self) if callable(route) else route
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def admin_url(obj, view="change"):
    """The admin page of `obj`, its id quoted as the admin does: a raw id containing e.g. `_22` would be
    read back as `"` and the object not found."""
    meta = obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=[quote(obj.pk)])
