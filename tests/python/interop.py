"""Interop check: the official Python MCP SDK client drives `arbor serve`.

Usage: python interop.py <path-to-arbor | http://HOST:PORT/mcp> <modern|handshake>
                         [--subscribe] [--profile arbor|everything]

Run by tests/python_interop.rs (stdio: the script starts `arbor serve --stdio`
itself) and tests/http_interop.rs (Streamable HTTP: the URL of a running
`arbor serve`), with a venv holding mcp==2.3.0. It connects with the SDK's
high-level `mcp.Client` over the SDK's stdio or Streamable HTTP transport,
forcing one protocol era:

* modern: `Client(mode="auto")`, the SDK default. The client probes
  `server/discover` at 2026-07-28 and adopts the result; it falls back to
  `initialize` only if the probe fails, so the script checks that it did not
  (a DiscoverResult was adopted, no `initialize` went on the wire). The
  alternative pin, `mode="2026-07-28"`, would skip `server/discover` entirely.
* handshake: `Client(mode="legacy")`, which sends `initialize` (offering the
  SDK's newest handshake version, 2025-11-25) and
  `notifications/initialized`, and never sends `server/discover`.

It lists tools, resources and prompts, calls `add` and `echo`, calls `count`
with a progress callback, reads `arbor://demo/readme`, gets the `greet`
prompt, and provokes protocol errors (unknown tool,
unknown resource). Every message on the wire is recorded through a tee around
the transport, so the summary also says what each era looked like on the
wire; over HTTP every exchange (method, status, MCP headers) is recorded too.

With `--subscribe` it also subscribes to `arbor://demo/counter` (handshake
era: `resources/subscribe`, the update arriving through `message_handler`;
2026-07-28: `Client.listen(resource_subscriptions=...)`, the update arriving
as a `ResourceUpdated` event of the subscription), calls `bump`, and waits for
`notifications/resources/updated` for that URI.

`--profile everything` maps the calls onto
`@modelcontextprotocol/server-everything` (the reference server, handshake
era only) and skips the arbor-specific parts (prompts, error probes), to
check this script itself.

Prints one JSON object (the summary) on stdout. Exits non-zero, with the
reason on stderr, if anything fails, including a check of its own.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version as package_version
from typing import Any

try:
    import anyio
    import httpx2
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.client.subscriptions import ResourceUpdated
    from mcp.shared.exceptions import MCPError
    from mcp.shared.message import SessionMessage
    from mcp_types import INVALID_PARAMS, ResourceUpdatedNotification, TextContent, TextResourceContents
    from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
except ImportError as e:  # pragma: no cover - environment problem
    print(f"interop.py: cannot import the MCP SDK: {e}", file=sys.stderr)
    sys.exit(3)

ERAS = {"modern": "auto", "handshake": "legacy"}
TIMEOUT_S = 30.0
UPDATE_WAIT_S = 15.0

PROFILES: dict[str, dict[str, Any]] = {
    "arbor": {
        "add": ("add", {"a": 2, "b": 3.5}),
        "echo": ("echo", {"message": "hello from python"}),
        "count": ("count", {"steps": 5, "step_ms": 100}),
        "readme": "arbor://demo/readme",
        "counter": "arbor://demo/counter",
        "bump": ("bump", {}),
        "arbor_checks": True,
    },
    # @modelcontextprotocol/server-everything (handshake era only): its
    # toggle-subscriber-updates tool starts updates for every subscribed URI.
    "everything": {
        "add": ("get-sum", {"a": 2, "b": 3.5}),
        "echo": ("echo", {"message": "hello from python"}),
        "count": ("trigger-long-running-operation", {"duration": 0.5, "steps": 5}),
        "readme": "demo://resource/static/document/features.md",
        "counter": "demo://resource/static/document/features.md",
        "bump": ("toggle-subscriber-updates", {}),
        "arbor_checks": False,
    },
}


class Failure(Exception):
    """A check of this script failed."""


def check(condition: bool, what: str) -> None:
    if not condition:
        raise Failure(what)


def wire_dump(message: Any) -> dict[str, Any]:
    return message.model_dump(by_alias=True, mode="json", exclude_unset=True)


class TeeRead:
    """A read stream that records every message it yields."""

    def __init__(self, inner: Any, log: list[tuple[str, dict[str, Any]]]) -> None:
        self._inner = inner
        self._log = log

    def _record(self, item: Any) -> Any:
        if isinstance(item, SessionMessage):
            self._log.append(("in", wire_dump(item.message)))
        else:
            self._log.append(("in", {"transport_exception": repr(item)}))
        return item

    async def receive(self) -> Any:
        return self._record(await self._inner.receive())

    def __aiter__(self) -> TeeRead:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> TeeRead:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> bool | None:
        return await self._inner.__aexit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class TeeWrite:
    """A write stream that records every message sent through it."""

    def __init__(self, inner: Any, log: list[tuple[str, dict[str, Any]]]) -> None:
        self._inner = inner
        self._log = log

    async def send(self, item: Any, /) -> None:
        self._log.append(("out", wire_dump(item.message)))
        await self._inner.send(item)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> TeeWrite:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> bool | None:
        return await self._inner.__aexit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def teed_stdio(params: StdioServerParameters, log: list[tuple[str, dict[str, Any]]]) -> Any:
    @asynccontextmanager
    async def transport() -> AsyncIterator[tuple[Any, Any]]:
        async with stdio_client(params) as (read, write):
            yield TeeRead(read, log), TeeWrite(write, log)

    return transport()


MCP_REQUEST_HEADERS = ("accept", "content-type", "last-event-id")


def mcp_headers(headers: Any, also: tuple[str, ...] = ()) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith("mcp-") or k.lower() in also}


def teed_http(url: str, log: list[tuple[str, dict[str, Any]]], http: list[dict[str, Any]]) -> Any:
    """Streamable HTTP through an httpx2 client whose hooks record every exchange."""

    async def on_request(request: httpx2.Request) -> None:
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.url.raw_path.decode(),
            "request_headers": mcp_headers(request.headers, MCP_REQUEST_HEADERS),
        }
        try:
            body = json.loads(request.content) if request.content else None
        except (ValueError, httpx2.RequestNotRead):
            body = "unparsable"
        if isinstance(body, dict):
            entry["rpc"] = body.get("method") or f"response:{body.get('id')}"
        http.append(entry)
        request.extensions["interop_entry"] = entry

    async def on_response(response: httpx2.Response) -> None:
        entry = response.request.extensions.get("interop_entry", {})
        entry["status"] = response.status_code
        entry["response_headers"] = mcp_headers(response.headers, ("content-type",))
        if response.status_code >= 400:
            await response.aread()
            entry["body"] = response.text[:2000]

    @asynccontextmanager
    async def transport() -> AsyncIterator[tuple[Any, Any]]:
        async with httpx2.AsyncClient(
            timeout=httpx2.Timeout(30.0, read=300.0),
            event_hooks={"request": [on_request], "response": [on_response]},
        ) as client:
            async with streamable_http_client(url, http_client=client) as (read, write):
                yield TeeRead(read, log), TeeWrite(write, log)

    return transport()


def text_of(content: list[Any]) -> str:
    check(len(content) == 1, f"expected one content block, got {content!r}")
    block = content[0]
    check(isinstance(block, TextContent), f"expected a text block, got {block!r}")
    return block.text


async def expect_error(what: str, call: Any) -> dict[str, Any]:
    """Runs `call`, which must raise the SDK's MCPError; returns its code and message."""
    try:
        result = await call()
    except MCPError as e:
        return {"code": e.code, "message": e.message, "exception": type(e).__name__}
    raise Failure(f"{what}: expected an MCPError, got a result: {result!r}")


async def run(
    target: str,
    era: str,
    wire: list[tuple[str, dict[str, Any]]],
    http: list[dict[str, Any]],
    subscribe: bool,
    profile_name: str,
    summary: dict[str, Any],
) -> None:
    profile = PROFILES[profile_name]
    over_http = target.startswith(("http://", "https://"))
    transport = (
        teed_http(target, wire, http)
        if over_http
        else teed_stdio(StdioServerParameters(command=target, args=["serve", "--stdio"]), wire)
    )
    summary.update(
        {
            "era": era,
            "sdk_version": package_version("mcp"),
            "transport": "streamable-http" if over_http else "stdio",
            "profile": profile_name,
        }
    )
    updates: list[str] = []

    async def on_message(message: Any) -> None:
        # Handshake era: resources/subscribe updates arrive here.
        if isinstance(message, ResourceUpdatedNotification):
            updates.append(str(message.params.uri))

    with anyio.fail_after(120):
        async with Client(
            transport,
            mode=ERAS[era],
            read_timeout_seconds=TIMEOUT_S,
            message_handler=on_message,
        ) as client:
            session = client.session
            summary["protocol_version"] = client.protocol_version
            summary["negotiation"] = (
                "discover"
                if session.discover_result is not None
                else "initialize"
                if session.initialize_result is not None
                else "none"
            )
            if session.discover_result is not None:
                summary["discover_supported_versions"] = list(session.discover_result.supported_versions)
            info = client.server_info
            summary["server_info"] = None if info is None else {"name": info.name, "version": info.version}
            caps = client.server_capabilities
            summary["server_capabilities"] = sorted(
                k for k, v in caps.model_dump(exclude_none=True).items() if v is not None
            )
            summary["instructions"] = client.instructions

            tools = await client.list_tools()
            summary["tools"] = [t.name for t in tools.tools]
            summary["tool_schemas"] = {t.name: t.input_schema for t in tools.tools}

            add = await client.call_tool(*profile["add"])
            check(not add.is_error, f"add failed: {add!r}")
            summary["add"] = text_of(add.content)

            echo = await client.call_tool(*profile["echo"])
            check(not echo.is_error, f"echo failed: {echo!r}")
            summary["echo"] = text_of(echo.content)

            progress: list[dict[str, Any]] = []

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                progress.append({"progress": value, "total": total, "message": message})

            count = await client.call_tool(*profile["count"], progress_callback=on_progress)
            check(not count.is_error, f"count failed: {count!r}")
            summary["count"] = text_of(count.content)
            # The server sends every notification before the response, on the
            # same pipe, but the SDK runs progress callbacks as spawned tasks:
            # give the last ones a moment to run.
            with anyio.move_on_after(2):
                while len(progress) < 5:
                    await anyio.sleep(0.02)
            summary["progress"] = progress

            resources = await client.list_resources()
            summary["resources"] = [str(r.uri) for r in resources.resources]
            read = await client.read_resource(profile["readme"])
            check(len(read.contents) == 1, f"expected one resource content, got {read.contents!r}")
            contents = read.contents[0]
            check(isinstance(contents, TextResourceContents), f"expected text contents, got {contents!r}")
            summary["resource"] = {
                "uri": str(contents.uri),
                "mime_type": contents.mime_type,
                "text": contents.text,
            }

            if subscribe:
                summary["subscription"] = await subscribe_and_bump(client, profile, updates)

            if profile["arbor_checks"]:
                await arbor_checks(client, summary)

    summary["wire"] = summarise_wire(wire)
    if over_http:
        summary["http"] = summarise_http(http)


async def read_text(client: Client, uri: str) -> str | None:
    read = await client.read_resource(uri, cache_mode="bypass")
    check(len(read.contents) == 1, f"expected one resource content, got {read.contents!r}")
    contents = read.contents[0]
    return contents.text if isinstance(contents, TextResourceContents) else None


async def subscribe_and_bump(client: Client, profile: dict[str, Any], updates: list[str]) -> dict[str, Any]:
    """Subscribes to the counter the era's way, bumps it, and waits for the update."""
    uri = profile["counter"]
    out: dict[str, Any] = {"uri": uri, "before": await read_text(client, uri)}
    if client.protocol_version in MODERN_PROTOCOL_VERSIONS:
        out["method"] = "subscriptions/listen"
        async with client.listen(resource_subscriptions=[uri]) as sub:
            out["honored"] = sub.honored.model_dump(by_alias=True, mode="json", exclude_none=True)
            bump = await client.call_tool(*profile["bump"])
            check(not bump.is_error, f"bump failed: {bump!r}")
            out["bump"] = text_of(bump.content)
            events: list[str] = []
            with anyio.move_on_after(UPDATE_WAIT_S):
                async for event in sub:
                    if isinstance(event, ResourceUpdated):
                        events.append(event.uri)
                        if event.uri == uri:
                            break
            out["events"] = events
            out["update_received"] = uri in events
    else:
        out["method"] = "resources/subscribe"
        with warnings.catch_warnings():
            # Deprecated as of 2026-07-28, and the way to subscribe before it.
            warnings.simplefilter("ignore")
            await client.subscribe_resource(uri)
        bump = await client.call_tool(*profile["bump"])
        check(not bump.is_error, f"bump failed: {bump!r}")
        out["bump"] = text_of(bump.content)
        with anyio.move_on_after(UPDATE_WAIT_S):
            while uri not in updates:
                await anyio.sleep(0.02)
        out["update_received"] = uri in updates
        if profile["arbor_checks"]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                await client.unsubscribe_resource(uri)
            out["unsubscribed"] = True
    # What reached message_handler (in 2026-07-28 the SDK hands listen
    # notifications to it as well as to the subscription).
    out["updates"] = list(updates)
    out["after"] = await read_text(client, uri)
    return out


async def arbor_checks(client: Client, summary: dict[str, Any]) -> None:
    """Prompts and protocol errors, as arbor's demo server has them."""
    prompts = await client.list_prompts()
    summary["prompts"] = [p.name for p in prompts.prompts]
    prompt = await client.get_prompt("greet", {"name": "Ada"})
    check(len(prompt.messages) == 1, f"expected one prompt message, got {prompt.messages!r}")
    message = prompt.messages[0]
    check(isinstance(message.content, TextContent), f"expected text, got {message.content!r}")
    summary["prompt"] = {
        "description": prompt.description,
        "role": message.role,
        "text": message.content.text,
    }

    summary["errors"] = {
        "unknown_tool": await expect_error(
            "calling an unknown tool", lambda: client.call_tool("no_such_tool", {})
        ),
        "unknown_resource": await expect_error(
            "reading an unknown resource",
            lambda: client.read_resource("arbor://demo/missing", cache_mode="bypass"),
        ),
        "prompt_missing_argument": await expect_error(
            "getting greet without its required argument",
            lambda: client.get_prompt("greet", {}),
        ),
    }
    summary["invalid_params_code"] = INVALID_PARAMS
    # Input validation errors are tool execution errors: a result
    # with isError, which the model can read and correct.
    bad = await client.call_tool("add", {"a": "two", "b": 3})
    summary["invalid_add_arguments"] = {
        "is_error": bool(bad.is_error),
        "text": bad.content[0].text if bad.content else "",
    }


def summarise_http(http: list[dict[str, Any]]) -> dict[str, Any]:
    """The HTTP exchanges: what was sent where, and how it was answered."""
    return {
        "exchanges": [f"{e['method']} {e['path']} {e.get('rpc')} -> {e.get('status')}" for e in http],
        "statuses": sorted({e.get("status") or 0 for e in http}),
        "protocol_version_headers": sorted(
            {e["request_headers"].get("mcp-protocol-version", "none") for e in http}
        ),
        "session_header_sent": sum(1 for e in http if "mcp-session-id" in e["request_headers"]),
        "session_ids_assigned": sorted(
            {e["response_headers"]["mcp-session-id"] for e in http if "mcp-session-id" in e.get("response_headers", {})}
        ),
        "mcp_request_headers": sorted({h for e in http for h in e["request_headers"] if h.startswith("mcp-")}),
        "failures": [e for e in http if (e.get("status") or 0) >= 400],
    }


def summarise_wire(wire: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """What went over the pipe: methods in order, and the era's marks on each."""
    requests = [m for d, m in wire if d == "out" and "method" in m and "id" in m]
    notifications_out = [m["method"] for d, m in wire if d == "out" and "method" in m and "id" not in m]
    notifications_in = [m["method"] for d, m in wire if d == "in" and "method" in m and "id" not in m]
    results = [m["result"] for d, m in wire if d == "in" and "result" in m]
    errors = [m["error"] for d, m in wire if d == "in" and "error" in m]
    transport_exceptions = [m["transport_exception"] for d, m in wire if "transport_exception" in m]

    def envelope_version(request: dict[str, Any]) -> str | None:
        meta = (request.get("params") or {}).get("_meta") or {}
        return meta.get("io.modelcontextprotocol/protocolVersion")

    def has_caps(request: dict[str, Any]) -> bool:
        meta = (request.get("params") or {}).get("_meta") or {}
        return isinstance(meta.get("io.modelcontextprotocol/clientCapabilities"), dict)

    return {
        "requests": [r["method"] for r in requests],
        "request_envelope_versions": sorted({str(envelope_version(r)) for r in requests}),
        "requests_with_client_capabilities": sum(1 for r in requests if has_caps(r)),
        "notifications_sent": notifications_out,
        "notifications_received": notifications_in,
        "results": len(results),
        "results_with_result_type": sum(1 for r in results if "resultType" in r),
        "result_types": sorted({str(r.get("resultType")) for r in results}),
        "error_codes": [e.get("code") for e in errors],
        "transport_exceptions": transport_exceptions,
    }


def main() -> int:
    usage = (
        f"usage: {sys.argv[0]} <arbor binary | http://HOST:PORT/mcp> <{'|'.join(ERAS)}>"
        f" [--subscribe] [--profile {'|'.join(PROFILES)}]"
    )
    args = sys.argv[1:]
    if len(args) < 2 or args[1] not in ERAS:
        print(usage, file=sys.stderr)
        return 2
    target, era, rest = args[0], args[1], args[2:]
    subscribe = "--subscribe" in rest
    rest = [a for a in rest if a != "--subscribe"]
    profile = "arbor"
    if rest[:1] == ["--profile"] and len(rest) == 2 and rest[1] in PROFILES:
        profile = rest[1]
    elif rest:
        print(usage, file=sys.stderr)
        return 2
    # SDK warnings (a notification it could not validate, a dropped tool) go to stderr.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    wire: list[tuple[str, dict[str, Any]]] = []
    http: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    try:
        anyio.run(run, target, era, wire, http, subscribe, profile, summary)
        own_checks(summary)
    except BaseException as e:  # noqa: BLE001 - report anything, with what led to it
        if isinstance(e, Failure):
            print(f"interop.py ({era}): check failed: {e}", file=sys.stderr)
        else:
            print(f"interop.py ({era}): {type(e).__name__}: {e}", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
        print(f"summary: {json.dumps(summary)}", file=sys.stderr)
        if http:
            print("HTTP exchanges (the last 30):", file=sys.stderr)
            for entry in http[-30:]:
                print(f"  {json.dumps(entry)}", file=sys.stderr)
        print("wire (the last 40 messages; out = client to server):", file=sys.stderr)
        for direction, message in wire[-40:]:
            print(f"  {direction:>3} {json.dumps(message)}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


def own_checks(s: dict[str, Any]) -> None:
    """Checks made here too, so a failure names its cause even without the Rust side."""
    era = s["era"]
    arbor = PROFILES[s["profile"]]["arbor_checks"]
    if era == "modern":
        check(s["protocol_version"] in MODERN_PROTOCOL_VERSIONS, f"modern era negotiated {s['protocol_version']!r}")
        check(s["negotiation"] == "discover", f"modern era negotiated by {s['negotiation']}")
        check("initialize" not in s["wire"]["requests"], "the modern era sent initialize (the probe fell back)")
    else:
        check(
            s["protocol_version"] in HANDSHAKE_PROTOCOL_VERSIONS,
            f"handshake era negotiated {s['protocol_version']!r}",
        )
        check(s["negotiation"] == "initialize", f"handshake era negotiated by {s['negotiation']}")
        check("server/discover" not in s["wire"]["requests"], "the handshake era sent server/discover")
    values = [p["progress"] for p in s["progress"]]
    check(len(values) >= 2, f"progress: {s['progress']}")
    check(all(a < b for a, b in zip(values, values[1:])), f"progress not increasing: {values}")
    if "subscription" in s:
        check(s["subscription"]["update_received"], f"no update for the subscribed resource: {s['subscription']}")
    check(not s["wire"]["transport_exceptions"], f"transport exceptions: {s['wire']['transport_exceptions']}")
    if not arbor:
        return
    check({"echo", "add", "count"} <= set(s["tools"]), f"tools: {s['tools']}")
    check(s["add"] == "5.5", f"add: {s['add']!r}")
    check(s["echo"] == "hello from python", f"echo: {s['echo']!r}")
    for name, error in s["errors"].items():
        if name != "unknown_resource":
            check(error["code"] == INVALID_PARAMS, f"{name}: {error}")


if __name__ == "__main__":
    sys.exit(main())
