"""Client certificates carrying SPIFFE IDs (and the wrong things), made with the openssl
command under a CA of their own, for the tests of certificate identity."""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from certs import OPENSSL

TRUST_DOMAIN = "example.org"

# name -> the subjectAltName line of its certificate ("" for none).
LEAVES = {
    "ada": "URI:spiffe://example.org/users/ada",
    "eval": "URI:spiffe://example.org/services/eval",
    "foreign": "URI:spiffe://other.example/services/eval",
    "no_san": "",
    "dns_only": "DNS:client.example.org",
    "two_uris": "URI:spiffe://example.org/users/ada,URI:spiffe://example.org/services/eval",
    "nested": "URI:spiffe://example.org/users/ada/laptop",
    "groups": "URI:spiffe://example.org/groups/admins",
    "https": "URI:https://example.org/users/ada",
    "port": "URI:spiffe://example.org:8443/users/ada",
    "upper": "URI:spiffe://Example.org/users/ada",
    "query": "URI:spiffe://example.org/users/ada?x=1",
    "bad_id": "URI:spiffe://example.org/users/-ada",
}


@dataclass(frozen=True)
class SpiffeCerts:
    directory: Path
    ca: Path

    def cert(self, name: str) -> Path:
        return self.directory / f"{name}.pem"

    def key(self, name: str) -> Path:
        return self.directory / f"{name}.key"

    def der(self, name: str) -> bytes:
        return ssl.PEM_cert_to_DER_cert(self.cert(name).read_text())


def _openssl(*args: str | Path) -> None:
    subprocess.run([OPENSSL, *map(str, args)], check=True, capture_output=True, timeout=60)


def make_spiffe_certs(directory: Path) -> SpiffeCerts:
    ca, ca_key = directory / "spiffe-ca.pem", directory / "spiffe-ca.key"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=spiffe-ca")  # fmt: skip
    made = SpiffeCerts(directory, ca)
    for name, san in LEAVES.items():
        csr, ext = directory / f"{name}.csr", directory / f"{name}.ext"
        ext.write_text("extendedKeyUsage=clientAuth\n" + (f"subjectAltName={san}\n" if san else ""))
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", made.key(name), "-out", csr, "-subj", f"/CN={name}")  # fmt: skip
        _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                 "-out", made.cert(name), "-days", "2", "-extfile", ext)  # fmt: skip
    return made
