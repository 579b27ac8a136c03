"""The mock server's account: the API key every route checks (with the API's 401, the key shown
masked), the models it lists and retrieves (any name, unless the server is told which exist), and
the billing routes relays keep (`/dashboard/billing/...`, with
and without /v1, as one-api and new-api answer them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from .config import Host
from .errors import error_body
from .faults import REDIRECTS, inject

MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-5", "text-embedding-3-small"]  # listed when none are told
CREATED = 1700000000  # every model's `created`: answers are deterministic
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def check_key(api_key: str | None, request: web.Request) -> web.Response | None:
    """The 401 for a request without `api_key` (as a bearer token or Azure's api-key), or None."""
    if api_key is None:
        return None
    given = request.headers.get("Authorization", "").removeprefix("Bearer ") or request.headers.get("api-key", "")
    if given == api_key:
        return None
    shown = given[:3] + "*" * 4 + given[-4:] if len(given) > 8 else "****"
    return web.json_response(
        error_body(
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        ),
        status=401,
    )


class Account:
    """The GET routes of the account: models, the subscription's limit and the usage so far."""

    def __init__(self, host: Host) -> None:
        self.host = host

    def routes(self) -> dict[str, Handler]:
        """GET path: handler. The billing routes answer with and without /v1, as the proxies' do."""
        routes: dict[str, Handler] = {"/v1/models": self._models, "/v1/models/{model:.+}": self._model}
        for prefix in ("", "/v1"):
            routes[f"{prefix}/dashboard/billing/subscription"] = self._subscription
            routes[f"{prefix}/dashboard/billing/usage"] = self._usage
        return routes

    async def _models(self, request: web.Request) -> web.Response:
        denied = check_key(self.host.config.api_key, request)
        if denied:
            return denied
        listed = self.host.config.models or MODELS
        return web.json_response({"object": "list", "data": [_model(name) for name in listed]})

    async def _model(self, request: web.Request) -> web.Response:
        denied = check_key(self.host.config.api_key, request)
        if denied:
            return denied
        name = request.match_info["model"]
        known = self.host.config.models
        if known is not None and name not in known:
            message = f"The model '{name[:200]}' does not exist"
            return web.json_response(
                error_body(message, "invalid_request_error", "model_not_found", "model"), status=404
            )
        return web.json_response(_model(name))

    def _billing(self, request: web.Request) -> tuple[float, float]:
        """(hard limit, used); raises the 401 or the 404 (no billing routes) instead."""
        denied = check_key(self.host.config.api_key, request)
        if denied is not None:
            raise web.HTTPUnauthorized(body=denied.body, content_type="application/json")
        if self.host.config.billing is None:
            raise web.HTTPNotFound()
        return self.host.config.billing

    async def _redirected(self, request: web.Request) -> web.StreamResponse | None:
        """A redirect fault's answer: the billing routes are redirected as the POST routes are."""
        fault = self.host.pick_fault(request.path.encode())
        if fault is None or fault.kind not in REDIRECTS:
            return None
        moved = self.host.config.redirect_to or f"http://127.0.0.1:{self.host.port}/moved/v1"
        return await inject(fault, request, retry_after=False, redirect_to=moved, hang_s=0)

    async def _subscription(self, request: web.Request) -> web.StreamResponse:
        redirected = await self._redirected(request)
        if redirected is not None:
            return redirected
        hard_limit = self._billing(request)[0]
        return web.json_response(
            {
                "object": "billing_subscription",
                "has_payment_method": True,
                "soft_limit_usd": hard_limit,
                "hard_limit_usd": hard_limit,
                "system_hard_limit_usd": hard_limit,
                "access_until": 0,
            }
        )

    async def _usage(self, request: web.Request) -> web.StreamResponse:
        redirected = await self._redirected(request)
        if redirected is not None:
            return redirected
        used = self._billing(request)[1]
        if not (request.query.get("start_date") and request.query.get("end_date")):
            # as the proxies do: an error object with HTTP 200
            return web.json_response(error_body("start_date and end_date are required", "invalid_request_error", None))
        return web.json_response({"object": "list", "total_usage": round(used * 100, 4)})


def _model(name: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": CREATED, "owned_by": "mock"}
