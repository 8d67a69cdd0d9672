"""Real signing keys made at test time, their JWKS, and JWTs minted with them (PyJWT), for
the tests of JWT identity; and an HTTPS server on 127.0.0.1 that serves a JWKS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

ISSUER = "https://issuer.test"
AUDIENCE = "v1op-tests"


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private: Any

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        writer = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "ES384": ECAlgorithm}
        writer["EdDSA"] = OKPAlgorithm
        jwk = json.loads(writer[self.algorithm].to_jwk(public))
        jwk.update(kid=self.kid, use="sig")
        return jwk

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def mint(self, claims: dict[str, Any] | None = None, *, header: dict | None = None, **more):
        """A JWT of ``claims`` over the good defaults (iss, aud, exp in 5 minutes)."""
        payload = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300}
        payload.update(claims or {})
        payload.update(more)
        payload = {k: v for k, v in payload.items() if v is not None}
        headers = {"kid": self.kid, **(header or {})}
        headers = {k: v for k, v in headers.items() if v is not None}
        return jwt.encode(payload, self.private, algorithm=self.algorithm, headers=headers)


def rsa_key(kid: str = "rsa-1", bits: int = 2048) -> SigningKey:
    return SigningKey(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=bits))


def ec_key(kid: str = "ec-1") -> SigningKey:
    return SigningKey(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


def ed_key(kid: str = "ed-1") -> SigningKey:
    return SigningKey(kid, "EdDSA", ed25519.Ed25519PrivateKey.generate())


def jwks(*keys: SigningKey) -> bytes:
    return json.dumps({"keys": [k.jwk() for k in keys]}).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_signed(header: dict, payload: dict, secret: bytes | None) -> str:
    """A token PyJWT would refuse to make: ``alg`` as the header says, HMAC-SHA256 with
    ``secret`` (the key-confusion attack: the public key as an HMAC secret), or no
    signature at all."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    if secret is None:
        return signing_input + "."
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def good_claims(sub: str = "users/ada") -> dict[str, Any]:
    return {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300, "sub": sub}


@dataclass
class JwksServer:
    """An HTTPS server on 127.0.0.1 that answers every GET with ``body`` and ``status``,
    counting the requests. ``hold`` makes it wait (for ``release``) before answering."""

    body: bytes = b'{"keys": []}'
    status: int = 200
    requests: int = 0
    hold: bool = False
    requested: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    released_in_time: bool | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/.well-known/jwks.json"

    def start(self, cert: str, key: str) -> ThreadingHTTPServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                owner.requested.set()
                if owner.hold:
                    owner.released_in_time = owner.release.wait(30)
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(owner.body)))
                self.end_headers()
                self.wfile.write(owner.body)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server
