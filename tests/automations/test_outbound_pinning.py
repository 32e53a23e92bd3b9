"""DNS rebinding: the address that was vetted is the address connected to; Host, SNI and the certificate
check keep the name."""

import socket
import ssl
import subprocess
import threading

import pytest

from automations.runtime import outbound_http

PUBLIC = "93.184.215.14"  # a global address; nothing here can reach it, which is the point


class CountingServer:
    """A TCP server on 127.0.0.1 that counts connections and answers one HTTP response to each (over
    TLS when given a certificate), recording the Host header and the SNI name it was sent."""

    def __init__(self, tls_cert=None):
        self.connections, self.hosts, self.sni = 0, [], []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.context = None
        if tls_cert:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(*tls_cert)
            self.context.sni_callback = lambda sock, name, ctx: self.sni.append(name)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            try:
                if self.context is not None:
                    conn = self.context.wrap_socket(conn, server_side=True)
                request = conn.recv(65536).decode(errors="replace")
                self.hosts += [line.split(":", 1)[1].strip() for line in request.split("\r\n")
                               if line.lower().startswith("host:")]
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n"
                             b"Connection: close\r\n\r\n" + b'{"secret": true}')
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def close(self):
        self.listener.close()


@pytest.fixture
def resolver(monkeypatch):
    """Answers per name from `answers[name]` (a list consumed in order, the last answer repeating),
    for the vetting lookup and for any lookup the HTTP stack would make; counts lookups per name."""
    real = socket.getaddrinfo
    state = {"answers": {}, "lookups": {}}

    def getaddrinfo(host, port, *args, **kwargs):
        queue = state["answers"].get(host)
        if queue is None:
            return real(host, port, *args, **kwargs)
        state["lookups"][host] = state["lookups"].get(host, 0) + 1
        address = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return state


def test_a_name_that_rebinds_to_loopback_never_reaches_it(settings, resolver):
    settings.RELAY_HTTP_ALLOW_PRIVATE = False
    server = CountingServer()
    try:
        resolver["answers"]["rebind.test"] = [PUBLIC, "127.0.0.1"]
        with pytest.raises(outbound_http.HttpError) as refused:
            outbound_http.perform("GET", f"http://rebind.test:{server.port}/internal", timeout_ms=300)
        assert refused.value.code in {"timeout", "connection_failed"}
        assert server.connections == 0  # the loopback answer was never connected to
        assert resolver["lookups"]["rebind.test"] == 1  # resolved once, for the check
        resolver["answers"]["loopback.test"] = ["127.0.0.1"]
        with pytest.raises(outbound_http.HttpError) as refused:
            outbound_http.perform("GET", f"http://loopback.test:{server.port}/internal")
        assert refused.value.code == "destination_refused" and server.connections == 0
    finally:
        server.close()


def test_the_vetted_address_is_used_with_the_name_in_the_host_header(settings, resolver):
    settings.RELAY_HTTP_ALLOW_PRIVATE = True  # a local server stands in for the public one
    server = CountingServer()
    try:
        resolver["answers"]["api.example.test"] = ["127.0.0.1", "10.9.9.9"]
        response = outbound_http.perform("GET", f"http://api.example.test:{server.port}/x",
                                         headers={"Host": "evil.test"})
        assert (response.status, response.body) == (200, {"secret": True})
        assert server.hosts == [f"api.example.test:{server.port}"]
        assert resolver["lookups"]["api.example.test"] == 1
    finally:
        server.close()


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for `api.example.test` (and the files to trust it)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=api.example.test", "-addext", "subjectAltName=DNS:api.example.test",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return str(cert), str(key)


def test_tls_keeps_sni_and_verifies_the_certificate_for_the_name(settings, resolver, monkeypatch, certificate):
    settings.RELAY_HTTP_ALLOW_PRIVATE = True
    monkeypatch.setattr(outbound_http, "CA_BUNDLE", certificate[0])
    server = CountingServer(tls_cert=certificate)
    try:
        resolver["answers"]["api.example.test"] = ["127.0.0.1"]
        resolver["answers"]["other.example.test"] = ["127.0.0.1"]
        response = outbound_http.perform("GET", f"https://api.example.test:{server.port}/x")
        assert (response.status, server.sni, server.hosts) == (200, ["api.example.test"],
                                                               [f"api.example.test:{server.port}"])
        with pytest.raises(outbound_http.HttpError) as refused:  # the certificate is not for this name
            outbound_http.perform("GET", f"https://other.example.test:{server.port}/x")
        assert refused.value.code == "connection_failed" and "other.example.test" in server.sni
    finally:
        server.close()
