"""``/dashboard``: open cases, SLA breaches and warnings, response and resolution times, load."""

from __future__ import annotations

from fastapi import APIRouter, Request

from backline.cases.dashboard import dashboard
from backline.cases.model import CaseSeverity
from backline.model import Severity
from backline.report.svg import SEVERITY_COLOUR
from backline.web.pages import charts
from backline.web.pages.render import render
from backline.web.pages.security import PageUser
from backline.web.pages.views import CLOCK_NAMES

router = APIRouter()

#: Case severities drawn in the colours of the matching finding severities.
SEV_COLOUR = {"S1": SEVERITY_COLOUR[Severity.CRITICAL], "S2": SEVERITY_COLOUR[Severity.HIGH],
              "S3": SEVERITY_COLOUR[Severity.MEDIUM], "S4": SEVERITY_COLOUR[Severity.LOW]}


#: Status names short enough for a bar's label.
SHORT = {"needs_info": "needs info", "investigating": "investig.", "waiting_customer": "wait cust.",
         "waiting_development": "wait dev.", "fix_pending": "fix pend."}


@router.get("/dashboard")
def dashboard_page(request: Request, session=PageUser):
    d = dashboard(request.app.state.hub.cases, session.user, clock_cache=request.app.state.queue.clocks)
    sevs = [s.value for s in CaseSeverity]
    statuses = list(d.open_by_severity_status)
    open_chart = charts.stacked_bars([SHORT.get(s, s) for s in statuses],
                                     {s: [d.open_by_severity_status[st][s] for st in statuses] for s in sevs},
                                     SEV_COLOUR, "Open cases by status, stacked by severity")
    days = [x.strftime("%d %b") for x in d.days]
    sla_chart = charts.stacked_bars(days, {"breaches": list(d.breaches_per_day), "warnings": list(d.warnings_per_day)},
                                    {"breaches": "#b42318", "warnings": "#d4a106"},
                                    "SLA breaches and warnings per day, last 30 days", every=5)
    weeks = [w.week.strftime("%d %b") for w in d.weeks]
    ttfr_chart = charts.lines(weeks, {"median": [w.ttfr_median_h for w in d.weeks],
                                      "90th percentile": [w.ttfr_p90_h for w in d.weeks]},
                              {"median": "#1849a9", "90th percentile": "#b54708"},
                              "Time to first response per week of creation (hours)", unit=" h", every=2,
                              dashed=("90th percentile",))
    ttr_chart = charts.lines(weeks, {"median": [w.ttr_median_h for w in d.weeks],
                                     "90th percentile": [w.ttr_p90_h for w in d.weeks]},
                             {"median": "#1849a9", "90th percentile": "#b54708"},
                             "Time to resolution per week of creation (hours)", unit=" h", every=2,
                             dashed=("90th percentile",))
    owners = list(d.load)[:12]
    load_chart = charts.stacked_bars(owners, {s: [d.load[o][s] for o in owners] for s in sevs}, SEV_COLOUR,
                                     "Open cases per owner, stacked by severity")
    return render(request, "dashboard.html", {
        "title": "Dashboard", "d": d, "sevs": sevs, "statuses": statuses, "clock_names": CLOCK_NAMES,
        "open_chart": open_chart, "sla_chart": sla_chart, "ttfr_chart": ttfr_chart, "ttr_chart": ttr_chart,
        "load_chart": load_chart, "owners": owners})
