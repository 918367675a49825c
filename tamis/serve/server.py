"""Start the service: refuse unsafe addresses, read the token, open and verify the indexes, run uvicorn.

Safe by default: it listens on 127.0.0.1. Any other address (0.0.0.0, a LAN
address, a host name other than localhost) is refused before anything is
loaded unless a bearer token is configured, from a file (`--token-file`) or
the TAMIS_SERVE_TOKEN environment variable, never from the command line,
where `ps` would show it. uvicorn stops gracefully on SIGINT/SIGTERM: it stops
accepting, lets requests in flight finish (up to `graceful_s`), then exits.
"""

import ipaddress
import logging
import os
import socket
import stat
import threading
import time

from tamis.embeddings import Device
from tamis.errors import ConfigError
from tamis.retrievers.hybrid import HybridConfig
from tamis.serve.models import Limits
from tamis.validation import Params

log = logging.getLogger(__name__)

TOKEN_ENV = "TAMIS_SERVE_TOKEN"
MIN_TOKEN_CHARS = 16


class ServeConfig(Params):
    indexes: list[str]
    host: str = "127.0.0.1"
    port: int = 8080
    token_file: str | None = None
    device: Device = "auto"
    limits: Limits = Limits()
    hybrid: HybridConfig = HybridConfig()
    graceful_s: int = 10  # seconds requests in flight get to finish on shutdown

    def check(self) -> None:
        if not self.indexes:
            raise ConfigError("serve needs at least one index.", hint="pass --index DIR")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"The 'port' parameter of serve must be in [0, 65535]. Got {self.port} instead.")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def load_token(token_file: str | None, environ: dict[str, str] | None = None) -> str | None:
    """The bearer token from `token_file`, else from TAMIS_SERVE_TOKEN, else None."""
    environ = os.environ if environ is None else environ
    if token_file:
        try:
            with open(token_file, encoding="utf-8") as f:
                token = f.read().strip()
            mode = os.stat(token_file).st_mode
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"Cannot read the token file {token_file}: {e}") from e
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            log.warning("the token file %s is readable by other users (chmod 600 it)", token_file)
        source = f"the token file {token_file}"
    else:
        token = environ.get(TOKEN_ENV, "").strip()
        source = TOKEN_ENV
        if not token:
            return None
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise ConfigError(f"The bearer token in {source} must be at least {MIN_TOKEN_CHARS} characters without spaces "
                          f"(got {len(token)}); make one with `python -c 'import secrets; print(secrets.token_hex(32))'`.")
    return token


def check_host(host: str, token: str | None) -> None:
    if token is None and not is_loopback(host):
        raise ConfigError(f"refusing to listen on {host} (not a loopback address) without a bearer token: "
                          f"put one in a file and pass --token-file FILE, or set {TOKEN_ENV}")


def build(cfg: ServeConfig, environ: dict[str, str] | None = None):
    """(the ASGI app, the token): checks the address first, then opens and verifies every index."""
    token = load_token(cfg.token_file, environ)
    check_host(cfg.host, token)
    from tamis.serve.app import create_app
    from tamis.serve.indexes import Catalog

    started = time.perf_counter()
    catalog = Catalog.open(cfg.indexes, cfg.device, cfg.hybrid)
    log.info("opened and verified %d index(es) in %.1f s: %s", len(catalog.indexes), time.perf_counter() - started,
             ", ".join(f"{s.name} ({s.kind}, {s.docs:,})" for s in catalog.indexes.values()))
    return create_app(catalog, cfg.limits, token), token


def uvicorn_config(app, cfg: ServeConfig, **extra):
    import uvicorn

    options = dict(host=cfg.host, port=cfg.port, log_level="info", access_log=False, server_header=False,
                   timeout_graceful_shutdown=cfg.graceful_s, limit_concurrency=cfg.limits.max_inflight * 8 + 64,
                   timeout_keep_alive=30)
    return uvicorn.Config(app, **{**options, **extra})


def run(cfg: ServeConfig) -> None:
    """Serve until SIGINT/SIGTERM."""
    import uvicorn

    app, _ = build(cfg)
    log.info("listening on http://%s:%d (%s)", cfg.host, cfg.port,
             "bearer token required" if app._token else "no token: loopback only")
    uvicorn.Server(uvicorn_config(app, cfg)).run()


class Background:
    """Serve an app from a thread on a free loopback port, for tests and benchmarks: `with Background(app) as url:`."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.url = f"http://{host}:{self.sock.getsockname()[1]}"
        cfg = ServeConfig(indexes=["-"], host=host, port=self.sock.getsockname()[1], graceful_s=2)
        self.server = uvicorn.Server(uvicorn_config(app, cfg, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
