"""Sync usage and cost from the providers' Admin APIs into the store (see ``run``)."""

from analytics.sync.http import RetryPolicy, SyncError
from analytics.sync.run import PROVIDERS, SyncResult, admin_key, api_of, sync_provider
from analytics.sync.state import latest_by_provider, sync_alerts, sync_status

__all__ = ["PROVIDERS", "RetryPolicy", "SyncError", "SyncResult", "admin_key", "api_of",
           "sync_provider", "sync_status", "sync_alerts", "latest_by_provider"]
