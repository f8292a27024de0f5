"""``make serve-demo``: the web workbench on a fresh data folder with the example case loaded.

Makes a new ``BACKLINE_HOME`` (SQLite), one user per role with a random password, files the
example escalation (examples/case-001) as support, gives it to the engineer, uploads
``examples/case-001/bundle.zip`` and analyses it, adds an internal and a public note, then
prints the URL and the logins and runs ``backline serve`` until Ctrl-C.

    python scripts/serve_demo.py [--port 8080] [--home DIR]
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROLES = (("sam", "support", None), ("erin", "engineer", None), ("dev", "developer", None),
         ("mia", "manager", None), ("carl", "customer", "acme"), ("root", "admin", None))
INTAKE = {"symptoms": "Orders fail with HTTP 500 when the shop reserves stock; the orders service log shows "
                      "'connection refused' from the reservation database",
          "business_impact": "No order can be placed in the EU shop since the morning deploy",
          "environment": "orders 4.2.1 on Debian 12, reservation database on the same host",
          "steps_to_reproduce": "Place any order with two items; the reservation call answers 500",
          "already_tried": "Restarted the orders service", "expected": "The order is reserved",
          "actual": "HTTP 500 and the stock helper crashes", "evidence": "bundle.zip (logs, capture, core)"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    ap.add_argument("--home", type=Path, default=None, help="data folder (default: a new temporary one)")
    args = ap.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="backline-demo-"))
    home.mkdir(parents=True, exist_ok=True)
    os.environ["BACKLINE_HOME"] = str(home)
    os.environ.pop("BACKLINE_DATABASE_URL", None)

    from backline.cases.evidence import JobRunner
    from backline.cases.hub import Hub
    from backline.cases.model import CaseSeverity
    from backline.cases.service import NewCase

    hub = Hub.open()
    logins = []
    users = {}
    for name, role, org in ROLES:
        password = secrets.token_urlsafe(9)
        users[name], _token = hub.users.add(name, role, org=org, team="emea" if role == "support" else None,
                                            password=password)
        logins.append((name, role, org, password))
    case = hub.cases.create(users["sam"], NewCase("Orders fail to reserve stock", "orders", "4.2.1", "acme",
                                                  CaseSeverity.S2, INTAKE))
    hub.cases.assign(users["erin"], case.key, "erin")
    hub.cases.set_status(users["erin"], case.key, "investigating")
    print(f"analysing {ROOT / 'examples/case-001/bundle.zip'} for {case.key} ...", flush=True)
    with open(ROOT / "examples" / "case-001" / "bundle.zip", "rb") as f:
        hub.evidence.upload(users["erin"], case.key, "bundle.zip", f)
    JobRunner(hub.cases, hub.store).run_pending()
    hub.cases.add_note(users["erin"], case.key, "The reservation database refuses connections on 15432; "
                                                "checking the pool configuration.", "internal")
    hub.cases.add_note(users["erin"], case.key, "We are analysing the logs and the capture you sent; "
                                                "next update within four business hours.", "public")
    hub.engine.dispose()

    url = f"http://127.0.0.1:{args.port}/"
    print(f"\nBackline workbench: {url}   (data in {home})\n")
    print(f"{'user':<6} {'role':<10} {'password':<14} sees")
    for name, role, org, password in logins:
        sees = f"the {org} cases (customer portal)" if org else ("the dashboard" if role in ("manager", "admin")
                                                                 else "the queue")
        print(f"{name:<6} {role:<10} {password:<14} {sees}")
    print(f"\nThe example case is {case.key}: {url}cases/{case.key}\nCtrl-C stops the server.\n", flush=True)
    exe = Path(sys.executable).with_name("backline")
    os.execv(str(exe), [str(exe), "serve", "--port", str(args.port)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
