"""The sandbox's certificate (trustme): names, key permissions, reuse, renewal, both trust files."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import stat

import httpx
from cryptography import x509

from sandbox.server import start_in_thread
from sandbox.tls import CA_NAME, ensure_certificate


def test_certificate_names_the_loopback_and_its_key_is_private(tmp_path):
    cert_path, key_path = ensure_certificate(tmp_path / "tls")
    chain = x509.load_pem_x509_certificates(cert_path.read_bytes())
    assert len(chain) == 2  # the server certificate, then the CA that signed it
    leaf, ca = chain
    assert leaf.issuer == ca.subject
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    left = leaf.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=360) < left <= dt.timedelta(days=366)
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    assert x509.load_pem_x509_certificate((tmp_path / "tls" / CA_NAME).read_bytes()) == ca


def test_a_valid_pair_is_reused_and_an_expiring_one_replaced(tmp_path):
    cert_path, key_path = ensure_certificate(tmp_path)
    first = cert_path.read_bytes()
    assert ensure_certificate(tmp_path) == (cert_path, key_path) and cert_path.read_bytes() == first
    cert_path.write_bytes(b"not a certificate")
    ensure_certificate(tmp_path)
    assert cert_path.read_bytes() != first and b"BEGIN CERTIFICATE" in cert_path.read_bytes()


def test_clients_trust_the_sandbox_with_either_file(tmp_path):
    with start_in_thread(tls=True, data_dir=tmp_path / "tls") as sb:
        assert sb.cert_path is not None
        for trust in (sb.cert_path, tmp_path / "tls" / CA_NAME):
            with httpx.Client(verify=str(trust), timeout=10) as client:
                assert client.get(f"{sb.url}/v1/models", params={"limit": 1}).status_code == 200
        with httpx.Client(timeout=10) as client:  # the system store does not know it
            try:
                client.get(f"{sb.url}/v1/models")
            except httpx.ConnectError as exc:
                assert "CERTIFICATE_VERIFY_FAILED" in str(exc)
            else:
                raise AssertionError("an unknown CA was trusted")
