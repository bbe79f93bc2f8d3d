"""The HTTP face of the service (Starlette): health, readiness, Prometheus metrics, one
webhook endpoint per source, the live report and KPI measurements."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tether.serve.service import Service
from tether.webhook import Refused

log = logging.getLogger("tether.serve")
MEDIA = {"html": "text/html; charset=utf-8", "json": "application/json",
         "csv": "text/csv; charset=utf-8", "md": "text/markdown; charset=utf-8"}


def create_app(service: Service, run_passes: bool = True) -> Starlette:
    """The ASGI app for ``service``; its lifespan starts the runner (``run_passes``) and,
    on shutdown, lets the pass in flight finish."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        ready, checks = service.readiness()
        return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

    async def metrics(request: Request) -> Response:
        return Response(service.metrics.text(), media_type=CONTENT_TYPE_LATEST)

    async def webhook(request: Request) -> Response:
        source = request.path_params["source"]
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > service.settings.max_body:
            return _refused(service, source, Refused(
                413, f"{source}: delivery of {declared} bytes is over the "
                     f"{service.settings.max_body}-byte cap"))
        body = await request.body()
        try:  # the store and the connector block: off the event loop
            delivery, verdict = await run_in_threadpool(
                service.deliver, source, request.headers, body, request.query_params)
        except Refused as refused:
            return _refused(service, source, refused)
        service.metrics.deliveries.labels(source, verdict).inc()
        log.info("webhook %s %s: %s", source, delivery.event or "-", verdict)
        if delivery.reply is not None:
            return Response(status_code=delivery.reply.status, headers=delivery.reply.headers)
        return JSONResponse({"verdict": verdict}, status_code=202 if verdict == "accepted"
                            else 200)

    async def report(request: Request) -> Response:
        fmt = request.path_params.get("fmt", "html")
        if fmt not in MEDIA:
            return JSONResponse({"refused": f"no report format '{fmt}'; ask for /report, "
                                 f"/report.{', /report.'.join(sorted(MEDIA))}"}, status_code=404)
        try:
            allowed = service.report_allowed(request.headers.get("authorization"))
        except Refused as refused:
            return JSONResponse({"refused": refused.reason}, status_code=refused.status)
        if not allowed:
            return JSONResponse({"refused": "a valid report token is needed"}, status_code=401,
                                headers={"WWW-Authenticate": 'Basic realm="tether", '
                                                             'Bearer realm="tether"'})
        if service.runner.last is None:
            return JSONResponse({"refused": "no pass has run yet; try again shortly"},
                                status_code=503)
        text = await run_in_threadpool(service.report, fmt)
        return Response(text, media_type=MEDIA[fmt])

    async def measurement(request: Request) -> Response:
        kpi_id = request.path_params["kpi"]
        body = await request.body()
        try:
            measured = await run_in_threadpool(service.record_measurement, kpi_id, body,
                                               request.headers.get("authorization"))
        except Refused as refused:
            log.warning("measurement of %s refused (%d): %s", kpi_id, refused.status,
                        refused.reason)
            return JSONResponse({"refused": refused.reason}, status_code=refused.status)
        log.info("measurement of %s recorded: %s at %s", kpi_id, measured.value,
                 measured.at.isoformat())
        return JSONResponse({"kpi": kpi_id, "value": measured.value,
                             "at": measured.at.isoformat(), "pass": "asked"}, status_code=202)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if run_passes:
            service.runner.start()
        yield
        service.runner.stop()
        service.close()

    return Starlette(routes=[
        Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics),
        Route("/webhooks/{source}", webhook, methods=["POST"]),
        Route("/report", report), Route("/report.{fmt:str}", report),
        Route("/kpis/{kpi}/measurements", measurement, methods=["POST"]),
    ], lifespan=lifespan)


def _refused(service: Service, source: str, refused: Refused) -> Response:
    """A delivery that changes nothing: logged with the source and the reason (never a
    secret: connectors' reasons name none), counted, answered with its status."""
    known = source if source in service.workspace.connectors else "(unknown)"  # no free labels
    service.metrics.deliveries.labels(known, f"refused_{refused.status}").inc()
    log.warning("webhook %s refused (%d): %s", source, refused.status, refused.reason)
    return JSONResponse({"refused": refused.reason}, status_code=refused.status)
