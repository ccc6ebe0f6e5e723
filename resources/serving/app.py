"""The HTTP face of the scoring service (Starlette on uvicorn, both shipped with dagster-webserver).

    POST /v1/score   {"flights": [...]} -> p_late, model_version and the features used, per flight
    GET  /v1/model   the production model: version, holdout metrics, approval
    GET  /healthz    200 when the registry verifies and the catalog opens, 503 otherwise

Errors are JSON ``{"error": ..., "field": ...}``: 400 bad field, 413 too many flights or too large
a body, 422 a date the lakehouse has no state for, 503 a registry that does not verify. Started by
``make serve`` (``python -m resources.serving.app``): it refuses to start when the registry or the
production artifact does not verify.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from resources.core.settings import Settings
from resources.serving.requests import MAX_BODY_BYTES, RequestError, decode_body, parse_prediction_time, parse_request
from resources.serving.service import ScoringService, ServiceUnavailable

DEFAULT_PORT = 8080
BODY_SECONDS = 10  # a 1 MB body on loopback arrives in milliseconds; a client slower than this is dropped
HEADER_SECONDS = 10  # the same for a request line and its headers (at most 16 kB)
log = logging.getLogger("lakehouse.serving")


def _error(exc: RequestError | ServiceUnavailable) -> JSONResponse:
    if isinstance(exc, RequestError):
        return JSONResponse(exc.as_json(), status_code=exc.status)
    return JSONResponse({"error": str(exc), "field": None}, status_code=503)


async def _read_body(request: Request) -> tuple[bytes | None, int]:
    """The body, or None past MAX_BODY_BYTES. An oversized body is still read (not kept) up to
    16x the limit before answering 413: a server that answers while the client is still sending
    breaks the client's pipe (seen under load), and the client never reads the 413. A body that
    takes longer than BODY_SECONDS to arrive raises TimeoutError (a slow drip held a connection
    open for as long as the client liked)."""
    parts, size = [], 0
    async with asyncio.timeout(BODY_SECONDS):
        async for chunk in request.stream():
            size += len(chunk)
            if size <= MAX_BODY_BYTES:
                parts.append(chunk)
            elif size > 16 * MAX_BODY_BYTES:
                break
    return (None if size > MAX_BODY_BYTES else b"".join(parts)), size


def create_app(service: ScoringService) -> Starlette:
    async def score(request: Request) -> JSONResponse:
        try:
            raw, size = await _read_body(request)
        except TimeoutError:
            return JSONResponse(
                {"error": f"the body did not arrive within {BODY_SECONDS} s", "field": "body"},
                status_code=408,
                headers={"connection": "close"},
            )
        if raw is None:
            return _error(RequestError(f"body of {size}+ bytes; at most {MAX_BODY_BYTES}", "body", 413))
        try:
            body = decode_body(raw)
            flights, when = parse_request(body), parse_prediction_time(body)
            return JSONResponse(await run_in_threadpool(service.score, flights, when))
        except (RequestError, ServiceUnavailable) as exc:
            return _error(exc)

    async def model(request: Request) -> JSONResponse:
        try:
            return JSONResponse(await run_in_threadpool(service.describe_model))
        except ServiceUnavailable as exc:
            return _error(exc)

    async def healthz(request: Request) -> JSONResponse:
        try:
            return JSONResponse(await run_in_threadpool(service.health))
        except ServiceUnavailable as exc:
            return _error(exc)

    return Starlette(
        routes=[
            Route("/v1/score", score, methods=["POST"]),
            Route("/v1/model", model, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's line and headers.

    uvicorn bounds the time between requests (keep-alive), not the time a request's headers take
    to arrive, so a client sending a header byte a second held a connection for as long as it
    liked. The deadline starts when the connection opens and again after each response; a request
    whose headers have not all arrived by then gets a 408 and the connection is closed."""

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._waiting_for = self.cycle  # a new request replaces the cycle once its headers are parsed
        self._deadline = self.loop.call_later(HEADER_SECONDS, self._headers_too_slow)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._deadline is not None and self.cycle is not self._waiting_for:
            self._deadline.cancel()
            self._deadline = None

    def on_response_complete(self) -> None:
        answered = self.cycle
        super().on_response_complete()  # may start a pipelined request whose headers already arrived
        if not self.transport.is_closing() and self.cycle is answered:
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def _headers_too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            self.transport.close()


def port_from_env(environ: dict[str, str] | None = None) -> int:
    value = (os.environ if environ is None else environ).get("SERVE_PORT") or str(DEFAULT_PORT)
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SystemExit(f"PORT must be a TCP port number 1..65535, got {value!r}")
    return int(value)


def main() -> int:
    import uvicorn

    port = port_from_env()
    settings = Settings.from_env()
    try:
        service = ScoringService(settings)
    except ServiceUnavailable as exc:
        print(f"scoring service refuses to start: {exc}", file=sys.stderr)
        return 2
    print(
        f"serving model {service.model.version} over catalog {service.catalog.version} on http://127.0.0.1:{port}",
        flush=True,
    )
    # Loopback only: the service has no authentication; put a gateway in front to expose it.
    # Headers are bounded in size (16 kB) and in time (HEADER_SECONDS), bodies by BODY_SECONDS.
    uvicorn.run(
        create_app(service),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        http=HeaderDeadlineProtocol,
        h11_max_incomplete_event_size=16 * 1024,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
