"""Throwaway TLS certificates for tests, made with the ``openssl`` command line tool.

:func:`make_tls_files` writes, into a directory, a CA (``ca.crt``/``ca.key``), a server
certificate signed by it for ``127.0.0.1`` (CN and subjectAltName IP:127.0.0.1 and
DNS:localhost) and a client certificate signed by it (for mutual TLS), each valid two
days. :class:`TlsFiles` names the files. ``make_tls_files(dir, ca_name=...)`` with
another name makes an unrelated CA: a client trusting it does not verify the servers
of the first.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import attrs

__all__ = ["TlsFiles", "TlsToolMissing", "make_tls_files"]


class TlsToolMissing(RuntimeError):
    """The ``openssl`` command line tool is not installed."""


@attrs.frozen
class TlsFiles:
    """The PEM files of one throwaway CA and the certificates it signed."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    @property
    def client_cert(self) -> Path:
        return self.directory / "client.crt"

    @property
    def client_key(self) -> Path:
        return self.directory / "client.key"

    def client_options(self, client_cert: bool = False) -> dict[str, Any]:
        """redis-py keyword arguments for a TLS client trusting this CA (with
        ``client_cert``, presenting the client certificate too)."""
        options: dict[str, Any] = {"ssl": True, "ssl_ca_certs": str(self.ca_cert)}
        if client_cert:
            options.update(ssl_certfile=str(self.client_cert), ssl_keyfile=str(self.client_key))
        return options

    def url_query(self, client_cert: bool = False) -> str:
        """``ssl=true&ssl_ca_certs=...`` (and the client certificate options) for a URL."""
        return "&".join(f"{key}={'true' if value is True else value}"
                        for key, value in self.client_options(client_cert).items())


def _openssl(directory: Path, *args: str) -> None:
    done = subprocess.run(["openssl", *args], cwd=directory, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        # Key generation prints progress lines of dots and pluses: leave them out.
        said = [line for line in done.stderr.splitlines() if line.strip(".+*- ")]
        raise RuntimeError(f"openssl {args[0]} failed ({done.returncode}): {' '.join(said)}")


def make_tls_files(directory: Path, ca_name: str = "lightbus_sync test CA") -> TlsFiles:
    """Make a CA, a server and a client certificate in ``directory`` (created if
    missing). Raises :class:`TlsToolMissing` without ``openssl``, RuntimeError if it
    fails."""
    if shutil.which("openssl") is None:
        raise TlsToolMissing("the openssl command line tool is not installed: cannot make test certificates")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(directory, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", f"/CN={ca_name}")
    (directory / "server.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    (directory / "client.cnf").write_text("extendedKeyUsage=clientAuth\n")
    for name, subject in (("server", "/CN=127.0.0.1"), ("client", "/CN=lightbus_sync test client")):
        _openssl(directory, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                 f"{name}.csr", "-subj", subject)
        _openssl(directory, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.cnf")
    return TlsFiles(directory)
