"""The operator interfaces: REST API with tokens and roles, the web console, Prometheus metrics.

``netgpt serve`` runs them (see :func:`netgpt.api.server.serving`); :func:`create_app` builds the
ASGI app over a :class:`ControlService`.
"""

from netgpt.api.app import create_app
from netgpt.api.auth import ApiUser, Role, TokenBook
from netgpt.api.service import ControlService

__all__ = ["ApiUser", "ControlService", "Role", "TokenBook", "create_app"]
