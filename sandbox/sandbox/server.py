"""Run every vendor fake of the sandbox on free loopback ports."""

from __future__ import annotations

import dataclasses
import importlib
from datetime import date
from typing import Any, Self

from sandbox.httpbase import App, Faults, HTTPError, Request, Response, Running, serve
from sandbox.seed import World

#: vendor name -> module exposing ``make_app(world, credentials) -> App``
VENDORS = {"greenhouse": "sandbox.greenhouse", "bamboohr": "sandbox.bamboohr"}

DEFAULT_CREDENTIALS: dict[str, dict[str, str]] = {
    "greenhouse": {
        "client_id": "hrsync-sandbox",
        "client_secret": "sandbox-greenhouse-secret",
        "user_id": "4301",
    },
    "bamboohr": {"api_key": "sandbox-bamboohr-key", "company_domain": "acme"},
}
VENDORS["gusto"] = "sandbox.gusto"
DEFAULT_CREDENTIALS["gusto"] = {
    "client_id": "hrsync-sandbox-gusto",
    "client_secret": "sandbox-gusto-secret",
    "refresh_token": "sandbox-gusto-refresh-token",
    "company_uuid": "c0a8e8e2-5e1f-4f3b-9a3e-6b1d2c3e4f50",
}
VENDORS["lever"] = "sandbox.lever"
DEFAULT_CREDENTIALS["lever"] = {"api_key": "sandbox-lever-key"}
VENDORS["surveymonkey"] = "sandbox.surveymonkey"
DEFAULT_CREDENTIALS["surveymonkey"] = {"access_token": "sandbox-surveymonkey-token"}

VENDORS["moodle"] = "sandbox.moodle"
DEFAULT_CREDENTIALS["moodle"] = {"token": "sandbox-moodle-wstoken"}
VENDORS["hibob"] = "sandbox.hibob"
DEFAULT_CREDENTIALS["hibob"] = {
    "service_user_id": "SERVICE-HRSYNC-0001",
    "token": "sandbox-hibob-service-token",
}

_FAULT_FIELDS = {f.name for f in dataclasses.fields(Faults) if not f.name.startswith("_")}


class Sandbox:
    """Context manager: ``with Sandbox(employees=60) as sb: sb.greenhouse_url ...``."""

    def __init__(
        self,
        employees: int = 50,
        seed: int = 7,
        faults: Faults | None = None,
        *,
        as_of: date | None = None,
        host: str = "127.0.0.1",
        ports: dict[str, int] | None = None,
        credentials: dict[str, dict[str, str]] | None = None,
        vendors: tuple[str, ...] = tuple(VENDORS),
        world: World | None = None,
    ) -> None:
        # a world of the caller's (e.g. sandbox.people.PeopleWorld from a people file), or seeded
        self.world = world or World(employees=employees, seed=seed, as_of=as_of)
        self.faults = faults or Faults()
        self.host = host
        self.ports = ports or {}
        self.credentials = {k: dict(v) for k, v in (credentials or DEFAULT_CREDENTIALS).items()}
        self.vendors = vendors
        self.apps: dict[str, App] = {}
        self._running: dict[str, Running] = {}

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        for vendor in self.vendors:
            module = importlib.import_module(VENDORS[vendor])
            app: App = module.make_app(self.world, self.credentials[vendor])
            self._add_admin_routes(app)
            self.apps[vendor] = app
            self._running[vendor] = serve(app, self.faults, self.host, self.ports.get(vendor, 0))
        return self

    def stop(self) -> None:
        for running in self._running.values():
            running.stop()
        self._running.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- addresses ------------------------------------------------------------------------

    def url(self, vendor: str) -> str:
        return self._running[vendor].url

    @property
    def greenhouse_url(self) -> str:
        return self.url("greenhouse")

    @property
    def bamboohr_url(self) -> str:
        return self.url("bamboohr")

    def info(self) -> dict[str, Any]:
        company = self.credentials["bamboohr"]["company_domain"]
        return {
            "employees": self.world.employees,
            "seed": self.world.seed,
            "as_of": self.world.as_of.isoformat(),
            "greenhouse": {
                "api_url": f"{self.greenhouse_url}/v3",
                "token_url": f"{self.greenhouse_url}/token",
                **self.credentials["greenhouse"],
            }
            if "greenhouse" in self._running
            else None,
            "bamboohr": {
                "api_url": f"{self.bamboohr_url}/api/v1",
                "legacy_api_url": f"{self.bamboohr_url}/api/gateway.php/{company}/v1",
                **self.credentials["bamboohr"],
            }
            if "bamboohr" in self._running
            else None,
            "gusto": {
                "api_url": self.url("gusto"),
                "token_url": f"{self.url('gusto')}/oauth/token",
                **self.credentials["gusto"],
            }
            if "gusto" in self._running
            else None,
            "moodle": {"base_url": self.url("moodle"), **self.credentials["moodle"]}
            if "moodle" in self._running
            else None,
            "lever": {"api_url": f"{self.url('lever')}/v1", **self.credentials["lever"]}
            if "lever" in self._running
            else None,
            "surveymonkey": {
                "api_url": f"{self.url('surveymonkey')}/v3",
                **self.credentials["surveymonkey"],
            }
            if "surveymonkey" in self._running
            else None,
            "hibob": {
                "api_url": f"{self.url('hibob')}/v1",
                # the sandbox tenant's custom field for the ATS candidate id
                "candidate_id_field": "work.custom.field_1700000000001",
                **self.credentials["hibob"],
            }
            if "hibob" in self._running
            else None,
        }

    # --- admin API (same port as each vendor, under /_sandbox, never faulted) -------------

    def _add_admin_routes(self, app: App) -> None:
        @app.route("GET", "/_sandbox/info")
        def info(req: Request) -> Response:
            return Response(200, self.info())

        @app.route("POST", "/_sandbox/faults")
        def set_faults(req: Request) -> Response:
            changes = req.json() or {}
            unknown = set(changes) - _FAULT_FIELDS
            if unknown:
                raise HTTPError(400, {"message": f"unknown fault settings: {sorted(unknown)}"})
            for name, value in changes.items():
                setattr(self.faults, name, value)
            return Response(200, {"injected": self.faults.injected})

        @app.route("POST", "/_sandbox/candidates/{ident}")
        def update_candidate(req: Request, ident: str) -> Response:
            cand = self.world.update_candidate(int(ident), **(req.json() or {}))
            return Response(200, {"id": cand.id, "updated_at": cand.updated_at})

        @app.route("POST", "/_sandbox/people/{ident}")
        def update_person(req: Request, ident: str) -> Response:
            person = self.world.update_person(int(ident), **(req.json() or {}))
            return Response(200, {"id": person.employee_id, "updated_at": person.updated_at})
