"""The allauth provider "canvas": found by allauth's registry through ``provider_classes``."""

from __future__ import annotations

from allauth.socialaccount.providers.base import ProviderAccount
from allauth.socialaccount.providers.oauth2.provider import OAuth2Provider

from .views import CanvasOAuth2Adapter


class CanvasAccount(ProviderAccount):
    def to_str(self) -> str:
        return self.account.extra_data.get("name") or super().to_str()


class CanvasProvider(OAuth2Provider):
    id = "canvas"
    name = "Canvas"
    account_class = CanvasAccount
    oauth2_adapter_class = CanvasOAuth2Adapter
    # Also on in settings; a provider for a public-facing school login should not depend on it.
    pkce_enabled_default = True

    def extract_uid(self, data: dict) -> str:
        return str(data["id"])

    def extract_common_fields(self, data: dict) -> dict:
        # No email: students may have none, and an address must never tie a student to a parent's account.
        return {"name": data.get("name") or ""}

    def extract_email_addresses(self, data: dict) -> list:
        return []


provider_classes = [CanvasProvider]
