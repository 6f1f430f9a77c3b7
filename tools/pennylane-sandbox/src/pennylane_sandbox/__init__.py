"""A local stand-in for Pennylane's Company API v2: `create_app(SandboxConfig(tokens=[...]))`."""

from .app import SandboxApp, create_app
from .config import FaultSettings, SandboxConfig

__all__ = ["FaultSettings", "SandboxApp", "SandboxConfig", "create_app"]
