"""A test CA and server certificates signed by it, made per test (nothing kept in the repo).

The server certificates name DNS hosts only, never an IP address: a client that connects to
127.0.0.1 accepts one only if it checked the name it was asked to send (SNI), not the address.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_FOR = dt.timedelta(days=1)


@dataclass(frozen=True)
class Authority:
    """A CA: its certificate (PEM file, what a client trusts) and the key that signs with it."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    pem_file: Path


@dataclass(frozen=True)
class ServerCertificate:
    cert_file: Path
    key_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _window() -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    # A minute back: the clocks of client and test are one, but a second's rounding is not.
    return now - dt.timedelta(minutes=1), now + VALID_FOR


def make_authority(directory: Path, common_name: str = "finmatch test CA") -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    not_before, not_after = _window()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem_file = directory / "ca.pem"
    pem_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return Authority(certificate, key, pem_file)


def issue(authority: Authority, dns_name: str, directory: Path) -> ServerCertificate:
    """A server certificate for ``dns_name`` only, signed by ``authority``."""
    key = ec.generate_private_key(ec.SECP256R1())
    not_before, not_after = _window()
    ca_key_id = authority.certificate.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier
    ).value
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(dns_name))
        .issuer_name(authority.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(authority.key, hashes.SHA256())
    )
    cert_file = directory / f"{dns_name}.pem"
    key_file = directory / f"{dns_name}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ServerCertificate(cert_file, key_file)
