"""The sandbox app framework: routing, vendor error hooks and fault injection over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from sandbox.httpbase import App, Faults, HTTPError, Request, Response, serve


class Echo(App):
    name = "echo"

    def rate_limited(self, req: Request, retry_after: int) -> Response:
        return Response(429, {"vendor": "echo"}, {"Retry-After": str(retry_after)})


@pytest.fixture
def served() -> Iterator[tuple[str, Faults]]:
    app = Echo()

    @app.route("GET", "/items/{ident}")
    def item(req: Request, ident: str) -> Response:
        if ident == "missing":
            raise HTTPError(404, {"message": "Resource not found"})
        return Response(200, {"id": ident, "name": req.arg("name")})

    @app.route("POST", "/token")
    def token(req: Request) -> Response:
        return Response(200, {"form": req.form()})

    faults = Faults()
    running = serve(app, faults)
    yield running.url, faults
    running.stop()


def test_routing_and_unicode(served: tuple[str, Faults]) -> None:
    url, _ = served
    resp = requests.get(f"{url}/items/7", params={"name": "Zoë O'Brien"}, timeout=5)
    assert resp.json() == {"id": "7", "name": "Zoë O'Brien"}
    assert requests.get(f"{url}/items/missing", timeout=5).status_code == 404
    assert requests.get(f"{url}/nowhere", timeout=5).status_code == 404
    assert requests.delete(f"{url}/items/7", timeout=5).status_code == 405


def test_scripted_faults_use_vendor_hooks(served: tuple[str, Faults]) -> None:
    url, faults = served
    faults.retry_after = 3
    faults.script[:] = ["429", "503", "malformed", "drop", "ok"]
    r429 = requests.get(f"{url}/items/1", timeout=5)
    assert (r429.status_code, r429.headers["Retry-After"], r429.json()) == (
        429,
        "3",
        {"vendor": "echo"},
    )
    assert requests.get(f"{url}/items/1", timeout=5).status_code == 503
    malformed = requests.get(f"{url}/items/1", timeout=5)
    with pytest.raises(ValueError):
        malformed.json()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/items/1", timeout=5)
    assert requests.get(f"{url}/items/1", timeout=5).json()["id"] == "1"
    assert faults.injected == {"429": 1, "503": 1, "malformed": 1, "drop": 1}


def test_token_endpoint_is_never_faulted(served: tuple[str, Faults]) -> None:
    url, faults = served
    faults.rate_5xx = 1.0
    resp = requests.post(f"{url}/token", data={"grant_type": "client_credentials"}, timeout=5)
    assert resp.json() == {"form": {"grant_type": "client_credentials"}}
    assert requests.get(f"{url}/items/1", timeout=5).status_code == 503


def test_random_faults_are_seeded() -> None:
    a, b = Faults(rate_429=0.3, seed=9), Faults(rate_429=0.3, seed=9)
    assert [a.pick("/x") for _ in range(50)] == [b.pick("/x") for _ in range(50)]
    assert Faults(rate_429=0.3, paths="^/v3/offers").pick("/v3/users") == "ok"
