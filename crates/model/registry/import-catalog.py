#!/usr/bin/env python3
"""Copies the facts reportroot needs from the shared catalog (reports-catalog.json) into
reports.json next to this script, applying the decisions recorded in DECISIONS below (the
catalog's section 6 lists the doc defects they correct).

Run once when the catalog changes:
    python3 crates/model/registry/import-catalog.py /path/to/reports-catalog.json
reports.json is the source of truth afterwards: crates/model/build.rs generates the registry
from it, and crates/model/tests/facts.rs checks the registry against it."""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# Refresh dates of demo data kept for per-day reports other than those in DEMO.
DEMO_RECENT_DAYS = 14

# The three reports served before the whole family keep their demo figures exactly.
DEMO = {
    "getOffice365ActivationsUserCounts": {
        "productType": {"choice": [["MICROSOFT 365 APPS FOR ENTERPRISE", 1.0],
                                   ["MICROSOFT 365 APPS FOR BUSINESS", 0.18],
                                   ["PROJECT CLIENT", 0.06], ["VISIO CLIENT", 0.09]]},
        "assigned": {"share": 0.96}, "activated": {"share": 0.81},
        "sharedComputerActivation": {"share": 0.03},
    },
    "getOffice365ActiveUserCounts": {
        "office365": {"share": 0.86}, "exchange": {"share": 0.80}, "oneDrive": {"share": 0.47},
        "sharePoint": {"share": 0.41}, "skypeForBusiness": {"share": 0.02},
        "yammer": {"share": 0.06}, "teams": {"share": 0.73},
    },
    "getTeamsDeviceUsageDistributionUserCounts": {
        "web": {"share": 0.31}, "windowsPhone": {"share": 0.002},
        "androidPhone": {"share": 0.21}, "ios": {"share": 0.26}, "mac": {"share": 0.09},
        "windows": {"share": 0.64}, "chromeOS": {"share": 0.012}, "linux": {"share": 0.006},
    },
    "getOffice365ActivationCounts": {
        "productType": {"choice": [["MICROSOFT 365 APPS FOR ENTERPRISE", 1.0],
                                   ["MICROSOFT 365 APPS FOR BUSINESS", 0.18],
                                   ["PROJECT CLIENT", 0.06], ["VISIO CLIENT", 0.09]]},
    },
    "getOneDriveUsageAccountCounts": {"siteType": {"choice": [["OneDrive", 1.0]]}},
    "getOneDriveUsageFileCounts": {"siteType": {"choice": [["OneDrive", 1.0]]}},
    "getSharePointSiteUsageFileCounts": {
        "siteType": {"choice": [["All", 1.0], ["Team", 0.62], ["Communication", 0.31]]}},
    "getSharePointSiteUsageSiteCounts": {
        "siteType": {"choice": [["All", 1.0], ["Team", 0.62], ["Communication", 0.31]]}},
    # The quota states split all mailboxes (getMailboxUsageMailboxCounts' total, a stock).
    "getMailboxUsageQuotaStatusMailboxCounts": {
        "underLimit": {"remainder": {"total": 0.93, "minus": [
            "warningIssued", "sendProhibited", "sendReceiveProhibited", "indeterminate"]}},
    },
    "getFormsUserActivityUserCounts": {
        "designers": {"share": 0.06}, "respondents": {"share": 0.24}, "totalUsers": {"share": 0.27},
    },
}

# The reports served before the whole family: the demo keeps their whole history.
FULL_HISTORY = {"getOffice365ActivationsUserCounts", "getOffice365ActiveUserCounts",
                "getTeamsDeviceUsageDistributionUserCounts"}

# Header spellings chosen where the docs disagree with themselves (catalog section 6); the
# other spelling is kept as an alias that import accepts.
SPELLING = {
    # Skype: examples and most lists say "3rd Party"; "third Party" is a list typo.
    "Dial-in/out third Party": ("Dial-in/out 3rd Party", "lists say 'third Party', example headers and the other lists '3rd Party'"),
    # TeamsTeamActivity*: the list's "Active users" against every example's "Active Users".
    "Active users": ("Active Users", "list says 'Active users', every example header 'Active Users'"),
    # Forms: the list's "TotalUsers" against the example's "Total Users".
    "TotalUsers": ("Total Users", "list says 'TotalUsers', the example header 'Total Users'"),
}

# Versions whose stored doc page is stale (catalog section 6): the current columns are used for
# that version and the stale list is kept as an older column set that import accepts.
STALE = {
    ("getTeamsDeviceUsageDistributionUserCounts", "v1.0"): "stored page predates Chrome OS/Linux (changelog v1.0 2022-06-06)",
    ("getTeamsDeviceUsageDistributionUserCounts", "beta"): "stored page predates Chrome OS/Linux (changelog beta 2021-04-13)",
    ("getTeamsDeviceUsageUserCounts", "beta"): "stored page predates Chrome OS/Linux (changelog beta 2021-04-13)",
    ("getTeamsUserActivityCounts", "beta"): "stored page predates Post/Reply/Duration/Meetings columns (changelog beta 2022-04-06)",
    ("getEmailActivityCounts", "v1.0"): "stored page predates Meeting Created/Interacted (changelog v1.0 2022-05-23)",
    ("getEmailActivityUserCounts", "beta"): "stored page predates Meeting Created/Interacted (changelog 2022)",
}
# A version's stored list that is a copy/paste error, not an older service state: replaced by the
# current columns and not accepted on import.
WRONG = {
    ("getM365AppPlatformUserCounts", "beta"): "beta list copied from getM365AppUserCounts; its example header and the v1.0 list say Windows, Mac, Mobile, Web",
}

# Properties the CSV lacks but a row needs, added on top of the catalog (not in any CSV column list).
ADDED = {
    "getTeamsTeamCounts": [
        (1, {"name": "reportPeriod", "csv": "Report Period", "edm": "Edm.String", "in_csv": False,
             "why": "CSV has no Report Period column, but the function takes period and the nested JSON carries reportPeriod; rows of different periods must not collide"}),
    ],
}

# Row grains decided differently from the catalog.
GRAIN = {
    f: ("per-period", "the CSV (both the list and the example header) has no Report Date, so a "
        "stored row cannot be per day; the catalog's per-day is inferred from the nested JSON "
        "example only")
    for f in ["getFormsUserActivityCounts", "getFormsUserActivityUserCounts"]
}


def spelled(title):
    return SPELLING.get(title, (title, None))[0]


def main(path):
    catalog = json.load(open(path))
    reports = []
    for f in catalog["functions"]:
        name = f["function"]
        props = []
        for p in f["properties"]:
            title = spelled(p["csv"])
            prop = {"name": p["name"], "csv": title, "edm": p["edm"]}
            aliases = sorted({a for a, (t, _) in SPELLING.items() if t == title}
                             | ({p["csv"]} - {title}))
            for columns in f["csv_columns"].values():
                for c in columns:
                    if c != title and spelled(c) == title:
                        aliases = sorted(set(aliases) | {c})
            aliases = [a for a in aliases if any(a in cols for cols in f["csv_columns"].values())
                       or a == p["csv"]]
            if aliases:
                prop["csv_aliases"] = aliases
            if p.get("inferred"):
                prop["inferred"] = p.get("why", True)
            hint = DEMO.get(name, {}).get(p["name"])
            if hint:
                prop["demo"] = hint
            props.append(prop)
        for at, added in ADDED.get(name, []):
            props.insert(at, added)
        union_csv = [p["csv"] for p in props if p.get("in_csv", True)]
        csv_columns = {}
        older = []
        notes = []
        for version in f["versions"]:
            stored = [spelled(c) for c in f["csv_columns"][version]]
            if (name, version) in STALE:
                older.append({"version": version, "columns": stored, "why": STALE[(name, version)]})
                notes.append(f"{version}: stored page is stale ({STALE[(name, version)]}); current columns used")
                stored = [c for c in union_csv]
            elif (name, version) in WRONG:
                notes.append(f"{version}: {WRONG[(name, version)]}")
                stored = [c for c in union_csv]
            unknown = [c for c in stored if c not in union_csv]
            assert not unknown, (name, version, unknown)
            csv_columns[version] = stored
        for title, (right, why) in SPELLING.items():
            if any(title in cols for cols in f["csv_columns"].values()):
                notes.append(f"header '{right}' chosen over '{title}': {why}")
        # The union must keep every version's relative order.
        for version, cols in csv_columns.items():
            assert [c for c in union_csv if c in cols] == cols, (name, version)
        grain = f["row_grain"]
        if name in GRAIN:
            grain, why = GRAIN[name]
            notes.append(f"row grain {grain}, not the catalog's {f['row_grain']}: {why}")
        dimension = f.get("dimension")
        shape = "nested" if f["json_shape"].startswith("nested") else "flat"
        v1 = f.get("v1_return")
        v1_return = None if v1 is None else ("graph.report" if v1.startswith("graph.report") else "Edm.Stream")
        takes_period = any(p["name"] == "period" for p in f["params"])
        for at, added in ADDED.get(name, []):
            notes.append(f"property {added['name']} added (JSON only): {added['why']}")
        entry = {
            "function": name,
            "family": f["family"],
            "versions": f["versions"],
            "takes_period": takes_period,
            "grain": grain,
            "dimension": dimension,
            "json_shape": shape,
            "json_container": f.get("json_container"),
            "v1_return": v1_return,
            "beta_return": f["beta_return"].split(" ")[0],
            "properties": props,
            "csv_columns": csv_columns,
        }
        # Demo history: the reports served first keep every day `demo --days` asks for; the
        # other per-day reports keep the latest DEMO_RECENT_DAYS refresh dates (each refresh of
        # a per-day report holds 7 + 30 + 90 + 180 rows: 190 days of all 47 took the demo
        # 23.7 s to start, 5.7M rows).
        if grain == "per-day" and name not in FULL_HISTORY:
            entry["demo_days"] = DEMO_RECENT_DAYS
        if older:
            entry["older_csv_columns"] = older
        if notes:
            entry["decisions"] = notes
        reports.append(entry)
    # The three reports served first keep their places (and their tables' order) at the front.
    first = ["getOffice365ActivationsUserCounts", "getOffice365ActiveUserCounts",
             "getTeamsDeviceUsageDistributionUserCounts"]
    reports.sort(key=lambda r: (first.index(r["function"]) if r["function"] in first else len(first)))
    out = {
        "about": "Facts about Microsoft Graph's get...Counts usage reports, copied from the shared catalog "
                 "(reports-catalog.json/.md, sources and commits listed there) by import-catalog.py, with "
                 "reportroot's decisions on top (each entry's 'decisions'). crates/model/build.rs generates the "
                 "registry from this file. 'inferred': the catalog found no source for the JSON name or EDM type.",
        "reports": reports,
    }
    with open(os.path.join(HERE, "reports.json"), "w") as fh:
        json.dump(out, fh, indent=1, ensure_ascii=False)
        fh.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/graph/reports-catalog.json")
