"""msgraph-sdk against a reportroot that throttles as Graph does and injects failures: its retry
handler must honour Retry-After and complete every call. Reads each of the three seed reports
three times, so that the throttle (configured small by check.sh) answers 429, while chaos
fails a share of the calls with 429 or 503.

Usage: HTTPS_BASE=https://127.0.0.1:PORT APP_JSON=app.json python3 sdk-retry.py"""
import asyncio
import json
import os
import time

from azure.identity.aio import ClientSecretCredential
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient

BASE = os.environ["HTTPS_BASE"]
APP = json.load(open(os.environ["APP_JSON"]))
SCOPE = "https://graph.microsoft.com/.default"


async def main():
    credential = ClientSecretCredential(
        APP["tenantId"],
        APP["clientId"],
        APP["clientSecret"],
        authority=BASE,
        disable_instance_discovery=True,
    )
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=[SCOPE], allowed_hosts=["127.0.0.1"]
    )
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = f"{BASE}/v1.0"
    reports = GraphServiceClient(request_adapter=adapter).reports
    calls = {
        "activations": lambda: reports.get_office365_activations_user_counts.get(),
        "active users": lambda: reports.get_office365_active_user_counts_with_period("D7").get(),
        "teams devices": lambda: reports.get_teams_device_usage_distribution_user_counts_with_period(
            "D30"
        ).get(),
    }
    started = time.monotonic()
    for round in range(3):
        for name, call in calls.items():
            text = (await call()).decode("utf-8-sig")
            lines = text.strip().splitlines()
            assert lines[0].startswith("Report Refresh Date,"), (name, round, lines[:2])
            assert len(lines) > 1, (name, round, "no rows")
    await credential.close()
    seconds = time.monotonic() - started
    print(f"msgraph-sdk: 3 rounds of the three seed reports completed through throttling and chaos in {seconds:.1f} s")


asyncio.run(main())
