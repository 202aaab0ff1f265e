"""Explicit dispatch over the API: `POST /calls/outbound` places a SIP call with a named agent.

    {"agent": "hindi", "uri": "sip:+919812345678@pbx.example.com", "metadata": {"crm_id": "A-17"}}

It needs an API key when auth is on (like minting tokens: a token never dials out). The answer
comes once the call is answered (200 with the call's id; its record is at /calls/{id}) or has
failed (409 with SIP's reason: rejected_486, no_answer, ...); an agent the node does not serve is
404, a node without SIP 503. `metadata` is the same bounded object a WebSocket start frame may
carry (the agent's `field:` context)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from voxline.dispatch.metadata import MAX_KEY_CHARS, MetadataError
from voxline.dispatch.rules import UnknownAgent
from voxline.dispatch.sources import outbound_sip_metadata, websocket_metadata

if TYPE_CHECKING:
    from fastapi import FastAPI

    from voxline.transports.base import CallIO

log = logging.getLogger(__name__)

OUTBOUND_PATH = "/calls/outbound"


class OutboundRequest(BaseModel):
    agent: str = Field(min_length=1, max_length=MAX_KEY_CHARS)
    uri: str = Field(min_length=5, max_length=256, pattern=r"^sips?:")
    metadata: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float = Field(30.0, ge=1.0, le=120.0, description="how long to wait for an answer")


def outbound_router(app: FastAPI) -> APIRouter:
    """The route; the node and the SIP endpoint (`app.state.sip_dialer`, set by the telephony
    service once SIP listens) are read from the app's state at request time."""
    from voxline.server.app import call_handler

    router = APIRouter()
    handler = call_handler(app, "sip")
    placing_calls: set[asyncio.Task[str]] = set()

    @router.post(OUTBOUND_PATH)
    async def place_outbound(request: OutboundRequest) -> dict[str, Any]:
        state = app.state.voxline
        if state.node is None:
            raise HTTPException(404, "this server has no node agents")
        try:
            fields = websocket_metadata({"metadata": request.metadata}).fields
            metadata = state.node.route(
                replace(outbound_sip_metadata(request.uri, "", request.agent), fields=fields)
            )
        except UnknownAgent as exc:
            raise HTTPException(404, exc.reason) from None
        except MetadataError as exc:
            raise HTTPException(422, str(exc)) from None
        sip = getattr(app.state, "sip_dialer", None)
        if sip is None or not state.ready:
            raise HTTPException(503, "SIP is not running on this node")
        metadata = replace(metadata, caller_number=sip.config.user)
        answered: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def on_answer(call: CallIO) -> Any:
            call.metadata = metadata
            if not answered.done():
                answered.set_result(call.call_id)
            return await handler(call)

        placing = asyncio.create_task(sip.call(request.uri, on_answer, timeout_s=request.timeout_s))
        placing_calls.add(placing)
        placing.add_done_callback(placing_calls.discard)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait({answered, placing}, timeout=request.timeout_s + 5,
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        if answered.done():
            log.info("outbound call to %s answered, agent %s", request.uri, metadata.agent)
            return {"call_id": answered.result(), "agent": metadata.agent, "status": "answered"}
        if placing.done():
            raise HTTPException(409, f"the call was not answered: {placing.result()}")
        raise HTTPException(504, "no answer in time")

    return router
