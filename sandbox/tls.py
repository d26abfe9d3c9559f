"""A local certificate for 127.0.0.1/localhost, so https-only clients (fal_client) can talk to
the sandbox: point `SSL_CERT_FILE` at the certificate file it writes.

`trustme` makes a throw-away certificate authority and a server certificate it signs (made for
exactly this: local test servers). The certificate file holds the server certificate followed by
its CA, so the one file is both what the server presents (leaf, then chain) and what a client
trusts (the CA inside it); `sandbox-ca.pem` holds the CA alone for clients that want only that.
The CA's key is never written: a new pair is made whenever the old one is missing or expiring.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

CERT_NAME, KEY_NAME, CA_NAME = "sandbox-cert.pem", "sandbox-key.pem", "sandbox-ca.pem"
VALID_DAYS = 365


def _still_valid(cert_path: Path) -> bool:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return False
    return cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=1)


def ensure_certificate(data_dir: Path) -> tuple[Path, Path]:
    """(cert, key) paths in `data_dir`, written now unless a valid pair is already there."""
    import trustme

    data_dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path, ca_path = data_dir / CERT_NAME, data_dir / KEY_NAME, data_dir / CA_NAME
    if cert_path.exists() and key_path.exists() and _still_valid(cert_path):
        return cert_path, key_path
    ca = trustme.CA(organization_name="fal-persona sandbox")
    now = dt.datetime.now(dt.UTC)
    leaf = ca.issue_cert("127.0.0.1", "localhost", common_name="fal-persona sandbox",
                         not_before=now - dt.timedelta(minutes=5),
                         not_after=now + dt.timedelta(days=VALID_DAYS))
    # The key is written owner-only before any content lands in it.
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(leaf.private_key_pem.bytes())
    ca_path.write_bytes(ca.cert_pem.bytes())
    cert_path.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems) + ca.cert_pem.bytes())
    return cert_path, key_path
