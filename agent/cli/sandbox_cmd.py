"""`fal-persona sandbox`: run the local fal.ai emulator in the foreground."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _seed(text: str | None) -> bytes | None:
    if not text:
        return None
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        seed = None
    if seed is None or len(seed) != 32:
        from agent.cli import CliError

        raise CliError("--seed must be 64 hex characters (a 32-byte Ed25519 seed)")
    return seed


def _banner(url: str, cert: Path | None, port_url: str) -> str:
    lines = [f"fal.ai sandbox listening on {url}", "Point fal-persona (or any client) at it with:",
             f"  FAL_QUEUE_BASE_URL={url}", f"  FAL_API_BASE_URL={url}/v1",
             f"  FAL_JWKS_URL={url}/.well-known/jwks.json"]
    if cert is not None:
        from sandbox.routes_run import RUN_PREFIX

        # The same three lines as RunningSandbox.fal_client_env(): queue host, run host, cert.
        lines += [f"TLS certificate: {cert}", "For the official Python fal_client (submit, run, subscribe...):",
                  f"  FAL_QUEUE_RUN_HOST={port_url}", f"  FAL_RUN_HOST={port_url}{RUN_PREFIX}",
                  f"  SSL_CERT_FILE={cert}"]
    lines.append("Any key of the form id:secret works. Ctrl-C stops the sandbox.")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Serve the sandbox until interrupted."""
    from agent import locations
    from sandbox.config import SandboxConfig
    from sandbox.server import serve

    if args.speed is None or args.speed <= 0:
        from agent.cli import CliError

        raise CliError("--speed must be a positive number")
    config = SandboxConfig(host=args.host, port=args.port, speed=args.speed, signing_seed=_seed(args.seed),
                           locked_key_ids=frozenset(args.locked_key or ()),
                           data_dir=locations.tls_dir() if args.tls else None)

    def ready(url: str, cert: Path | None) -> None:
        host_port = url.split("://", 1)[1]
        print(_banner(url, cert, host_port), flush=True)

    try:
        serve(args.host, args.port, config, tls=args.tls, data_dir=config.data_dir, on_ready=ready)
    except OSError as exc:
        print(f"fal-persona: cannot serve on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0
