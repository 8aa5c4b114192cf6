"""The console's settings read from the environment (pydantic-settings), apart from ``releasegate.settings``
so that the console (``console_ports``) imports nothing that reaches the store."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleOidcSettings(BaseSettings):
    """The console's sign-in with the organisation's identity provider (OpenID Connect, authorization
    code with PKCE), prefix ``RELEASEGATE_CONSOLE_OIDC_``; off while ``issuer`` is empty. Which roles a
    group gives is governed: ``oidc_groups`` in the approvers config."""

    model_config = SettingsConfigDict(env_prefix="RELEASEGATE_CONSOLE_OIDC_", extra="ignore")

    issuer: str = Field(
        default="",
        description="Issuer URL of the identity provider (discovery at <issuer>/.well-known/openid-configuration); "
        "empty: OIDC sign-in off.",
    )
    client_id: str = Field(default="releasegate-console", description="The console's client id at the provider.")
    client_secret: SecretStr = Field(
        default=SecretStr(""), description="The console's client secret at the provider (empty: a public client)."
    )
    redirect_url: str = Field(
        default="",
        description="The callback registered at the provider; default <console origin>/signin/oidc/callback.",
    )
    username_claim: str = Field(
        default="preferred_username",
        description="ID token claim holding the user name, as the approvers config spells it.",
    )
    groups_claim: str = Field(
        default="groups", description="ID token claim holding the user's groups (mapped to roles by oidc_groups)."
    )
    scopes: str = Field(default="openid profile email", description="Scopes asked for (space-separated).")

    @property
    def enabled(self) -> bool:
        return bool(self.issuer.strip())
