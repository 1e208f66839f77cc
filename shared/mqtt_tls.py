"""TLS for the MQTT client: the broker's CA and, for mutual TLS (AWS IoT Core's way: one
certificate per device), a client certificate and its private key.

``mqtt.cert_file`` (the certificate, public) is configuration; the private key is the secret
``mqtt_client_key``, read like the other secrets from ``$CREDENTIALS_DIRECTORY`` (systemd
``LoadCredential=``) or ``$RECYCLOPS_MQTT_CLIENT_KEY``, never from the config file. The key
reaches OpenSSL through an anonymous in-memory file where the system has one (Linux), so it is
never written to disk here. Every failure names the setting at fault, and so does a broker's
refusal (``describe``): a missing certificate, one from another CA.
"""

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .config.mqtt import MqttConfig
from .errors import RecyclopsError

KEY_SECRET = "mqtt_client_key"
KEY_SOURCES = "$CREDENTIALS_DIRECTORY/mqtt_client_key or $RECYCLOPS_MQTT_CLIENT_KEY"


class MqttError(RecyclopsError):
    """The broker cannot be reached or refused us."""


def tls_context(config: MqttConfig, key: str | None, key_origin: str) -> ssl.SSLContext:
    """The client's TLS context: the broker verified against ``mqtt.ca_file`` (else the
    system's CAs) and, when configured, this client's certificate and key."""
    try:
        context = ssl.create_default_context(cafile=config.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise MqttError(f"mqtt.ca_file: {config.ca_file}: cannot use: {exc}") from None
    if config.cert_file is None and key is None:
        return context
    if config.cert_file is None:
        raise MqttError(
            f"{KEY_SECRET} is set (from {key_origin}) but mqtt.cert_file is not: set the "
            "client certificate that goes with the key"
        )
    if key is None:
        raise MqttError(
            f"mqtt.cert_file is set ({config.cert_file}) but the client key is not: put it "
            f"in {KEY_SOURCES}"
        )
    _load_pair(context, Path(config.cert_file), key, key_origin)
    return context


def _load_pair(context: ssl.SSLContext, cert: Path, key: str, key_origin: str) -> None:
    try:
        text = cert.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise MqttError(f"mqtt.cert_file: {cert}: cannot read: {exc}") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise MqttError(f"mqtt.cert_file: {cert}: not a PEM certificate")
    if "PRIVATE KEY-----" not in key:
        raise MqttError(f"{KEY_SECRET} (from {key_origin}): not a PEM private key")
    if "ENCRYPTED" in key:
        raise MqttError(
            f"{KEY_SECRET} (from {key_origin}): an encrypted key cannot be used unattended; "
            "store it unencrypted where only this service reads it (LoadCredential=)"
        )
    with _key_path(key) as path:
        try:
            context.load_cert_chain(str(cert), path)
        except ssl.SSLError as exc:
            if exc.reason == "KEY_VALUES_MISMATCH":
                raise MqttError(
                    f"{KEY_SECRET} (from {key_origin}) is not the private key of "
                    f"mqtt.cert_file {cert}"
                ) from None
            raise MqttError(
                f"mqtt.cert_file {cert} with {KEY_SECRET} (from {key_origin}): unusable: {exc}"
            ) from None


@contextlib.contextmanager
def _key_path(key: str) -> Iterator[str]:
    """A path OpenSSL can open holding ``key``, gone when the block ends."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("mqtt_client_key", 0)
        try:
            os.write(fd, key.encode("ascii"))
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="recyclops-tls-") as folder:  # mode 0700
        path = Path(folder) / "key.pem"
        path.write_text(key, encoding="ascii")
        yield str(path)


def describe(config: MqttConfig, error: str) -> str:
    """A connection failure (an exception's or paho's text) in the operator's words."""
    where = f"{config.host}:{config.port}"
    upper = error.upper()
    if "CERTIFICATE_REQUIRED" in upper or "CERTIFICATE REQUIRED" in upper:
        return (
            f"{where} requires a client certificate: set mqtt.cert_file and the "
            f"{KEY_SECRET} secret ({error})"
        )
    if any(s in upper for s in ("UNKNOWN_CA", "UNKNOWN CA", "BAD_CERTIFICATE", "BAD CERTIFICATE")):
        return (
            f"{where} refused the client certificate mqtt.cert_file ({config.cert_file}): "
            f"not issued by a CA the broker trusts, or expired or revoked ({error})"
        )
    if "CERTIFICATE_UNKNOWN" in upper or "CERTIFICATE_EXPIRED" in upper:
        return (
            f"{where} refused the client certificate mqtt.cert_file ({config.cert_file}) ({error})"
        )
    if "CERTIFICATE_VERIFY_FAILED" in upper:
        return (
            f"{where}: the broker's certificate does not verify against mqtt.ca_file "
            f"({config.ca_file or 'the system CAs'}) ({error})"
        )
    return f"{where}: {error}"
