"""Typed dependencies: routes declare what they need; tests override these with app.dependency_overrides."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.api.components import Components
from services.core.settings import ApiSettings

# auto_error=False: a missing header reaches require_api_key, which answers the API's own 401 body. The app
# declares this scheme (and routes require it) only when a key is configured; see create_app.
_bearer = HTTPBearer(auto_error=False, description="Send `Authorization: Bearer <RAG_API_KEY>`")


def get_components(request: Request) -> Components:
    return request.app.state.components


def get_settings(request: Request) -> ApiSettings:
    return request.app.state.components.settings


ComponentsDep = Annotated[Components, Depends(get_components)]
SettingsDep = Annotated[ApiSettings, Depends(get_settings)]


def require_api_key(
    settings: SettingsDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    if settings.api_key is None:
        return
    expected = settings.api_key.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials else b""
    # Constant-time comparison: response timing must not reveal how much of a guessed key was right.
    if not hmac.compare_digest(given, expected):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing or invalid API key (send 'Authorization: Bearer <RAG_API_KEY>')",
            headers={"WWW-Authenticate": "Bearer"},
        )
