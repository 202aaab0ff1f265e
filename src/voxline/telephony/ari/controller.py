"""The Stasis application: every caller Asterisk sends to `Stasis(<app>)` becomes an RtpCall.

Per call: answer the caller, open our RTP socket, ask Asterisk for an external-media channel that
streams to it, learn where Asterisk listens (UNICASTRTP_LOCAL_ADDRESS/PORT), mix both channels in a
bridge, then hand the call to the handler. Asterisk's own events (DTMF, hang-ups) are routed to the
call by caller channel id. Every ARI failure ends that one call; the others never notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable

from voxline.agent.config import AriConfig
from voxline.audio.clock import Clock
from voxline.calls.runner import run_call
from voxline.dispatch.metadata import CallMetadata
from voxline.dispatch.sources import ari_metadata
from voxline.logs import call_id_var
from voxline.telephony import CallHandler
from voxline.telephony.access import SourceAllowList
from voxline.telephony.ari.client import AriClient, AriError, events_url
from voxline.telephony.ari.events import AriEvent, AriEventStream
from voxline.telephony.ari.leg import AriLeg
from voxline.telephony.ari.media import codec_for_format
from voxline.telephony.rtp.call import RtpCall
from voxline.telephony.rtp.handoff import open_call_rtp
from voxline.transports.base import Dtmf

log = logging.getLogger(__name__)

MEDIA_CHANNEL_PREFIX = "voxline-media-"
"""Our external-media channels carry this id prefix, so their own StasisStart is not taken for a caller."""
DTMF_DIGITS = frozenset("0123456789*#ABCD")
_ENDING_EVENTS = {"StasisEnd": "caller_hangup", "ChannelHangupRequest": "caller_hangup",
                  "ChannelDestroyed": "caller_hangup"}  # fmt: skip


class AriController:
    """Connects to Asterisk's ARI as the Stasis app `config.app` and runs `on_call` for each caller."""

    def __init__(
        self,
        config: AriConfig,
        on_call: CallHandler,
        *,
        rtp_port_min: int = 20000,
        rtp_port_max: int = 20999,
        clock: Clock | None = None,
        transfer_context: str | None = None,
        route: Callable[[CallMetadata], CallMetadata] | None = None,
    ) -> None:
        self.config = config
        self.route = route
        """The node's dispatch: the agent for a StasisStart's metadata; ValueError: none (hung up)."""
        self._media_sources = (
            SourceAllowList(config.allow_from, what="ARI external media")
            if config.allow_from is not None
            else None
        )
        self.on_call = on_call
        self.rtp_port_min = rtp_port_min
        self.rtp_port_max = rtp_port_max
        self.clock = clock
        self.transfer_context = transfer_context
        self.media_in_jobs = False
        """`workers.mode: process`: each call's RTP socket goes to its job process."""
        self.client = AriClient(config.url, config.username, config.password)
        self.events = AriEventStream(
            events_url(config.url, config.app), self.client.auth_header, self._on_event
        )
        self._legs: dict[str, AriLeg] = {}  # by caller channel id
        self._media_ids: dict[str, str] = {}  # external-media channel id -> caller channel id
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    @property
    def active_calls(self) -> int:
        return len(self._legs)

    async def start(self) -> None:
        """Check the credentials and open the events socket; raises AriAuthError/AriError if we can't."""
        info = await self.client.asterisk_info()
        version = info.get("system", {}).get("version", "?") if isinstance(info.get("system"), dict) else "?"
        await self.events.connect_once()
        log.info("ARI app %r registered with Asterisk %s at %s", self.config.app, version, self.config.url)

    async def stop(self) -> None:
        """Stop taking events and hang up every call we still hold."""
        self._stopping = True
        await self.events.aclose()
        for leg in list(self._legs.values()):
            leg.end_call("server_stopping")  # the handler returns; the call's task then hangs up the caller
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5.0)
        stuck = list(self._tasks)
        for task in stuck:  # a handler that ignores the hang-up; its teardown still runs on cancel
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)
        await self.client.aclose()

    # -- events
    async def _on_event(self, event: AriEvent) -> None:
        channel_id = event.channel_id
        if channel_id is None:
            return
        if event.type == "StasisStart":
            self._on_stasis_start(event, channel_id)
        elif event.type == "ChannelDtmfReceived":
            self._on_dtmf(event, channel_id)
        elif event.type in _ENDING_EVENTS:
            self._on_channel_ending(event, channel_id)

    def _on_stasis_start(self, event: AriEvent, channel_id: str) -> None:
        if channel_id in self._media_ids or channel_id.startswith(MEDIA_CHANNEL_PREFIX):
            return  # our own external-media channel entering the app
        if channel_id in self._legs:
            log.debug("duplicate StasisStart for %s ignored", channel_id)
            return
        if self._stopping:
            return
        metadata = ari_metadata(event.raw, event.args)
        if self.route is not None:
            try:
                metadata = self.route(metadata)
            except ValueError as exc:
                log.warning("ARI call %s refused: %s", channel_id, exc)
                self._refuse(channel_id)
                return
        leg = AriLeg(caller_id=channel_id, media_id=MEDIA_CHANNEL_PREFIX + uuid.uuid4().hex)
        leg.metadata = metadata
        self._legs[channel_id] = leg
        self._media_ids[leg.media_id] = channel_id
        token = call_id_var.set(channel_id)  # the task copies the context: all its logs carry the call id
        try:
            task = asyncio.get_running_loop().create_task(self._run_call(leg), name=f"ari-call-{channel_id}")
        finally:
            call_id_var.reset(token)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        log.info("ARI call from %s (%s) args=%s", event.channel_name, channel_id, list(event.args))

    def _refuse(self, channel_id: str) -> None:
        """Hang up a caller no agent takes, unanswered."""

        async def hang_up() -> None:
            try:
                await self.client.hangup(channel_id)
            except AriError as exc:
                log.warning("hanging up refused caller %s failed: %s", channel_id, exc)

        task = asyncio.get_running_loop().create_task(hang_up(), name=f"ari-refuse-{channel_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_dtmf(self, event: AriEvent, channel_id: str) -> None:
        leg = self._legs.get(channel_id)
        if leg is None or leg.call is None:
            return
        if event.digit is None or event.digit not in DTMF_DIGITS:
            log.warning("ignoring DTMF event with digit %r on %s", event.digit, channel_id)
            return
        leg.call.inject_dtmf(Dtmf(event.digit, max(0, event.duration_ms)))

    def _on_channel_ending(self, event: AriEvent, channel_id: str) -> None:
        leg = self._legs.get(channel_id)
        if leg is not None:
            leg.caller_gone = True
            leg.end_call("transferred" if leg.transferred else _ENDING_EVENTS[event.type])
            return
        caller_id = self._media_ids.get(channel_id)
        if caller_id is not None and (leg := self._legs.get(caller_id)) is not None:
            leg.media_gone = True
            if not leg.cleaning_up:
                log.warning(
                    "external media channel %s went away (%s); ending the call", channel_id, event.type
                )
                leg.end_call("media_lost")

    # -- one call
    async def _run_call(self, leg: AriLeg) -> None:
        try:
            call = await self._set_up(leg)
        except (AriError, OSError, ValueError) as exc:  # ValueError: media_host is not a local IP address
            log.error("ARI call set-up failed: %s", exc)
            await self._tear_down(leg)
            return
        except asyncio.CancelledError:
            await self._tear_down(leg)
            raise
        if leg.ended_reason is not None:  # the caller left while we were setting up
            call.remote_hangup(leg.ended_reason)
        try:
            await run_call(call, self.on_call)  # hangs the caller up and closes our media
        finally:
            await self._tear_down(leg)

    async def _set_up(self, leg: AriLeg) -> RtpCall:
        cfg = self.config
        await self.client.answer(leg.caller_id)
        codec = codec_for_format(cfg.format)
        leg.session = await open_call_rtp(
            cfg.media_host, self.rtp_port_min, self.rtp_port_max, in_job=self.media_in_jobs, codec=codec,
            dtmf_payload_type=None,  # DTMF comes as ChannelDtmfReceived events: don't count it twice
            call_id=leg.caller_id, clock=self.clock,
        )  # fmt: skip
        session = leg.session
        await self.client.external_media(
            app=cfg.app,
            external_host=f"{_host_for_uri(cfg.media_host)}:{session.local_port}",
            format=cfg.format,
            channel_id=leg.media_id,
        )
        leg.media_created = True
        address = await self.client.get_variable(leg.media_id, "UNICASTRTP_LOCAL_ADDRESS")
        port_text = await self.client.get_variable(leg.media_id, "UNICASTRTP_LOCAL_PORT")
        try:
            port = int(port_text)
        except ValueError as exc:
            raise AriError("GET", "variable", 200, f"UNICASTRTP_LOCAL_PORT is {port_text!r}") from exc
        if not 0 < port < 65536:
            raise AriError("GET", "variable", 200, f"UNICASTRTP_LOCAL_PORT {port} out of range")
        if self._media_sources is not None and not self._media_sources.allows(address):
            raise AriError(
                "GET", "variable", 200, f"UNICASTRTP_LOCAL_ADDRESS {address!r} is outside allow_from"
            )
        try:
            session.set_remote(address, port)
        except ValueError as exc:
            raise AriError("GET", "variable", 200, str(exc)) from exc
        # Asterisk sends from the address it announced over the authenticated ARI connection:
        # packets from anywhere else are never heard, not even before Asterisk's first one.
        session.learn_sources = False
        leg.bridge_id = f"voxline-bridge-{uuid.uuid4().hex}"
        await self.client.create_bridge(leg.bridge_id, name=f"voxline {leg.caller_id}")
        leg.bridge_created = True
        await self.client.add_channels(leg.bridge_id, [leg.caller_id, leg.media_id])
        leg.call = RtpCall(
            leg.caller_id, session, on_hangup=self._hangup_caller(leg), on_transfer=self._transfer_caller(leg)
        )
        leg.call.metadata = leg.metadata
        log.info(
            "ARI media up: us %s:%d <-> asterisk %s:%d (%s)",
            session.local_host, session.local_port, address, port, cfg.format,
        )  # fmt: skip
        return leg.call

    def _hangup_caller(self, leg: AriLeg) -> Callable[[str], Awaitable[None]]:
        async def hang_up(reason: str) -> None:
            if leg.caller_gone or leg.transferred:
                return
            try:
                await self.client.hangup(leg.caller_id)
            except AriError as exc:
                if exc.status != 404:
                    log.warning("hanging up the caller failed: %s", exc)
            leg.caller_gone = True
            log.info("hung up the caller (%s)", reason)

        return hang_up

    def _transfer_caller(self, leg: AriLeg) -> Callable[[str], Awaitable[bool]]:
        async def transfer(target: str) -> bool:
            if leg.caller_gone:
                return False
            endpoint, context, extension = parse_transfer_target(target, self.transfer_context)
            leg.transferred = True  # before the request: the StasisEnd it causes may come first
            try:
                if endpoint is not None:
                    await self.client.redirect(leg.caller_id, endpoint)
                else:
                    await self.client.continue_in_dialplan(
                        leg.caller_id, context=context, extension=extension
                    )
            except AriError as exc:
                leg.transferred = False
                log.warning("transfer to %s failed: %s", target, exc)
                return False
            log.info("transferred the caller to %s", target)
            return True

        return transfer

    async def _tear_down(self, leg: AriLeg) -> None:
        """Release everything this call created in Asterisk and here; every step tolerates 'already gone'.

        A caller still in our app is hung up: the call is over for voxline (a failed set-up, lost media,
        a stopping server), and leaving it in Stasis would hold the line open in silence.
        """
        leg.cleaning_up = True
        if not leg.caller_gone and not leg.transferred:
            await self._quietly(self.client.hangup(leg.caller_id), "hang up caller")
        if leg.bridge_created and leg.bridge_id:
            await self._quietly(self.client.delete_bridge(leg.bridge_id), "delete bridge")
        if leg.media_created and not leg.media_gone:
            await self._quietly(self.client.hangup(leg.media_id), "delete external media channel")
        if leg.call is None and leg.session is not None:
            with contextlib.suppress(Exception):
                await leg.session.aclose()
        self._legs.pop(leg.caller_id, None)
        # keep the media id a moment: its StasisEnd/ChannelDestroyed may still be on the way
        asyncio.get_running_loop().call_later(30.0, self._media_ids.pop, leg.media_id, None)
        log.info("ARI call cleaned up")

    @staticmethod
    async def _quietly(request: Awaitable[None], what: str) -> None:
        try:
            await request
        except AriError as exc:
            if exc.status != 404:
                log.warning("%s failed: %s", what, exc)


def parse_transfer_target(target: str, default_context: str | None) -> tuple[str | None, str | None, str]:
    """(endpoint, context, extension): a channel endpoint is redirected, an extension continues in dialplan.

    "PJSIP/1000" or any "TECH/resource" → redirect to that endpoint; "sip:bob@pbx" → redirect to
    "PJSIP/sip:bob@pbx"; "1000" → continue at extension 1000 in `default_context` (or the
    channel's own context if none); "1000@sales" → extension 1000 in context "sales".
    """
    target = target.strip()
    if target.lower().startswith(("sip:", "sips:")):
        return f"PJSIP/{target}", None, ""
    if "/" in target:
        return target, None, ""
    extension, _, context = target.partition("@")
    return None, context or default_context, extension


def _host_for_uri(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
