"""WeCom's callback message crypto: SHA1 signatures and AES-256-CBC envelopes, via `cryptography`."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

AES_KEY_LENGTH = 43  # EncodingAESKey: base64 of 32 bytes without its trailing "="
BLOCK = 32  # WeCom pads to 32-byte blocks (PKCS#7 with k = 32), not AES's 16


class CallbackCryptoError(ValueError):
    """A callback that is not from WeCom for this corp: bad signature, tampered, other corp."""


def check_aes_key(aes_key: str) -> bytes:
    """The 32-byte key of a 43-character EncodingAESKey; a clear error for anything else."""
    if len(aes_key) != AES_KEY_LENGTH:
        raise ValueError(
            f"WECOM_CALLBACK_AES_KEY must be the 43-character EncodingAESKey from WeCom's admin "
            f"console, not {len(aes_key)} characters"
        )
    try:
        key = base64.b64decode(aes_key + "=", validate=True)
    except binascii.Error:
        raise ValueError(
            "WECOM_CALLBACK_AES_KEY is not base64 (letters, digits, + and /)"
        ) from None
    if len(key) != 32:
        raise ValueError("WECOM_CALLBACK_AES_KEY does not decode to 32 bytes")
    return key


def new_credentials() -> tuple[str, str]:
    """A fresh (token, EncodingAESKey) pair for the operator to paste into WeCom's console."""
    alphabet = string.ascii_letters + string.digits
    token = "".join(secrets.choice(alphabet) for _ in range(32))
    return token, base64.b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """msg_signature: SHA1 of the four strings sorted and joined."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


@dataclass(frozen=True)
class CallbackCrypto:
    """One corp's callback credentials: verify and open what WeCom posts, seal what it would."""

    token: str
    aes_key: str
    receive_id: str  # the corp id; a message sealed for another corp is refused

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError("WECOM_CALLBACK_TOKEN is empty; set the Token from WeCom's console")
        if not self.receive_id:
            raise ValueError("WECOM_CORP_ID is empty; set your corp id (我的企业 → 企业ID)")
        check_aes_key(self.aes_key)

    @property
    def _key(self) -> bytes:
        return check_aes_key(self.aes_key)

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        """Refuse a signature that does not match (constant-time comparison)."""
        expected = signature(self.token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected, (msg_signature or "").lower()):
            raise CallbackCryptoError("msg_signature does not match: not signed with our token")

    def decrypt(self, encrypt: str) -> str:
        """The message inside a base64 ciphertext, after the padding and receive-id checks."""
        try:
            data = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise CallbackCryptoError("the ciphertext is not base64") from None
        if not data or len(data) % 16:
            raise CallbackCryptoError("the ciphertext is not whole AES blocks")
        key = self._key
        decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise CallbackCryptoError("bad padding: the ciphertext was tampered with")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise CallbackCryptoError("the plaintext is too short")
        (length,) = struct.unpack(">I", plain[16:20])
        message, receive_id = plain[20 : 20 + length], plain[20 + length :]
        if len(message) != length:
            raise CallbackCryptoError("the message length does not fit the plaintext")
        if receive_id.decode("utf-8", "replace") != self.receive_id:
            raise CallbackCryptoError("the message was sealed for another corp (receive id)")
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError:
            raise CallbackCryptoError("the message is not UTF-8") from None

    def open(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        """Verify, then decrypt: the message WeCom sent."""
        self.verify(msg_signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def encrypt(self, message: str, *, random16: bytes | None = None) -> str:
        """Seal `message` as WeCom does (the emulator posts events this way)."""
        body = message.encode("utf-8")
        plain = (
            (random16 or secrets.token_bytes(16))
            + struct.pack(">I", len(body))
            + body
            + self.receive_id.encode("utf-8")
        )
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        key = self._key
        encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")

    def seal(self, message: str, timestamp: str, nonce: str) -> tuple[str, str]:
        """(encrypt, msg_signature) of `message`, ready to post."""
        encrypt = self.encrypt(message)
        return encrypt, signature(self.token, timestamp, nonce, encrypt)

    def envelope(self, message: str, timestamp: str, nonce: str) -> tuple[str, str]:
        """(XML body, msg_signature) as WeCom posts an event to the callback URL."""
        encrypt, sign = self.seal(message, timestamp, nonce)
        xml = (
            f"<xml><ToUserName><![CDATA[{self.receive_id}]]></ToUserName>"
            f"<AgentID><![CDATA[]]></AgentID><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        )
        return xml, sign
