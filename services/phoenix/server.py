"""Run the Phoenix collector and UI (``make run`` / tests) from its own virtual environment.

The Phoenix *server* cannot share the project's venv (it needs openai>=3.31, ragas 0.4.3 needs <3), so
``make phoenix-setup`` installs it into ``.venv-phoenix`` and this module execs it there with telemetry
off, no external resources, the UI and OTLP/HTTP on loopback. Phoenix always binds its OTLP/gRPC port on
all interfaces; the stack exports over HTTP only, so point ``RAG_PHOENIX_GRPC_PORT`` at a port your
firewall closes. In compose the official ``arizephoenix/phoenix`` image runs instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from services.core.settings import PhoenixSettings

REPO = Path(__file__).resolve().parents[2]


class PhoenixNotInstalledError(RuntimeError):
    """The separate Phoenix venv is missing: ``make phoenix-setup`` creates it."""


def phoenix_executable(settings: PhoenixSettings) -> Path:
    venv = settings.phoenix_venv if settings.phoenix_venv.is_absolute() else REPO / settings.phoenix_venv
    exe = venv / "bin" / "phoenix"
    if not exe.exists():
        raise PhoenixNotInstalledError(f"{exe} not found: run `make phoenix-setup` (or set RAG_PHOENIX_VENV)")
    return exe


def phoenix_env(settings: PhoenixSettings) -> dict[str, str]:
    workdir = (settings.data_dir / "phoenix").resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    return {
        "PHOENIX_HOST": settings.phoenix_host,
        "PHOENIX_PORT": str(settings.phoenix_port),
        "PHOENIX_GRPC_PORT": str(settings.phoenix_grpc_port),
        "PHOENIX_WORKING_DIR": str(workdir),
        "PHOENIX_TELEMETRY_ENABLED": "false",
        "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
    }


def main() -> None:
    settings = PhoenixSettings()
    exe = phoenix_executable(settings)
    os.execve(str(exe), [str(exe), "serve"], os.environ | phoenix_env(settings))


if __name__ == "__main__":
    main()
