"""Microsoft's Python libraries against reportroot over HTTPS, unchanged: azure-identity's
ClientSecretCredential signs in at reportroot's token endpoint (reportroot as the authority),
msgraph-sdk reads the three seed reports and an entity set with that credential, and MSAL's
ConfidentialClientApplication gets a token. The CA is trusted through SSL_CERT_FILE and
REQUESTS_CA_BUNDLE, as README says.

Usage: HTTPS_BASE=https://127.0.0.1:PORT APP_JSON=app.json python3 sdk-signin.py
(app.json as printed by `reportroot app add --json`)."""
import asyncio
import json
import os

import msal
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient

BASE = os.environ["HTTPS_BASE"]
APP = json.load(open(os.environ["APP_JSON"]))
SCOPE = "https://graph.microsoft.com/.default"


def msal_token():
    app = msal.ConfidentialClientApplication(
        APP["clientId"],
        client_credential=APP["clientSecret"],
        authority=f"{BASE}/{APP['tenantId']}",
        instance_discovery=False,
    )
    result = app.acquire_token_for_client(scopes=[SCOPE])
    assert "access_token" in result, result
    assert result["token_type"] == "Bearer", result
    bad = msal.ConfidentialClientApplication(
        APP["clientId"],
        client_credential="not-the-secret",
        authority=f"{BASE}/{APP['tenantId']}",
        instance_discovery=False,
    ).acquire_token_for_client(scopes=[SCOPE])
    assert bad.get("error") == "invalid_client", bad
    assert 7000215 in bad.get("error_codes", []), bad
    print("msal: ConfidentialClientApplication got a token, and invalid_client for a wrong secret: ok")


async def graph_reads():
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
    client = GraphServiceClient(request_adapter=adapter)
    reports = client.reports
    answers = {
        "activations": await reports.get_office365_activations_user_counts.get(),
        "active users": await reports.get_office365_active_user_counts_with_period("D7").get(),
        "teams devices": await reports.get_teams_device_usage_distribution_user_counts_with_period(
            "D30"
        ).get(),
    }
    for name, body in answers.items():
        text = body.decode("utf-8-sig")
        lines = text.strip().splitlines()
        assert lines[0].startswith("Report Refresh Date,"), (name, lines[:2])
        assert len(lines) > 1, (name, "no rows")
    request = RequestInformation()
    request.http_method = Method.GET
    request.url = f"{BASE}/v1.0/reports/office365ActiveUserCounts?$top=3"
    request.headers.try_add("Accept", "application/json")
    page = json.loads(await adapter.send_primitive_async(request, "bytes", {}))
    assert len(page["value"]) == 3, page
    await credential.close()
    print("msgraph-sdk: the three seed reports and an entity set over HTTPS with ClientSecretCredential: ok")


msal_token()
asyncio.run(graph_reads())
