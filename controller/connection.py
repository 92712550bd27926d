"""The one way to a Temporal client: address, namespace, credentials, TLS, data converter.

Apart from ``service`` so that the command line connects without importing the server,
the worker and the ingest side (most of Homeostat), which it does not need.
"""

from __future__ import annotations

from temporalio import client as temporal_client
from temporalio import runtime as temporal_runtime
from temporalio import service as temporal_service

from controller import errors
from controller import settings as settings_module
from controller.workflows import converter


async def connect(
    settings: settings_module.TemporalSettings,
    address: str,
    *,
    runtime: temporal_runtime.Runtime | None = None,
    lazy: bool = False,
) -> temporal_client.Client:
    """Connect to Temporal at ``address`` (through ``runtime``, default: the SDK's default).

    Args:
        settings: namespace, credentials and TLS.
        address: where Temporal listens.
        runtime: the SDK runtime (metrics); default: the SDK's default.
        lazy: return at once; the client connects on its first call, and again on the
            next one after a failure. A worker cannot run on a lazy client.

    Raises:
        errors.DependencyError: Temporal does not answer (never when ``lazy``); the
            message names the address.
    """
    api_key = settings_module.reveal(settings.api_key)
    try:
        return await temporal_client.Client.connect(
            address,
            namespace=settings.namespace,
            api_key=api_key,
            tls=tls_config(settings),
            data_converter=converter.DATA_CONVERTER,
            runtime=runtime,
            lazy=lazy,
        )
    except RuntimeError as exc:
        raise errors.DependencyError(
            f"temporal.address: cannot reach Temporal at {address}: {exc}"
        ) from None


def tls_config(settings: settings_module.TemporalSettings) -> temporal_service.TLSConfig | bool:
    """TLS towards Temporal: files for (mutual) TLS, or plain TLS with an API key, or none.

    Raises:
        errors.ConfigError: a TLS file cannot be read; the message names the setting.
    """
    files = {
        "tls_ca_file": settings.tls_ca_file,
        "tls_cert_file": settings.tls_cert_file,
        "tls_key_file": settings.tls_key_file,
    }
    read: dict[str, bytes | None] = {}
    for name, path in files.items():
        try:
            read[name] = path.read_bytes() if path is not None else None
        except OSError as exc:
            message = f"temporal.{name}: cannot read {path}: {exc.strerror}"
            raise errors.ConfigError(message) from None
    if any(read.values()) or settings.tls_server_name:
        return temporal_service.TLSConfig(
            server_root_ca_cert=read["tls_ca_file"],
            client_cert=read["tls_cert_file"],
            client_private_key=read["tls_key_file"],
            domain=settings.tls_server_name,
        )
    return settings.tls or settings.api_key is not None
