// Interop check: an official TypeScript MCP SDK client drives an MCP server
// over HTTP.
//
// Usage: node interop.mjs <v1|v2> <streamable|sse> <url> [--mode auto|legacy] [--profile arbor|everything]
//                         [--no-subscribe]
//
// Run by tests/http_interop.rs, from the node prefix it installs
// (`<target>/ts-mcp`, from tests/ts/package.json and its lock), where this file
// is copied so that its imports resolve against that prefix's node_modules.
//
// * v1 is `@modelcontextprotocol/sdk` 1.x, handshake era only (`initialize`,
//   then `Mcp-Session-Id` on every request): `streamable` uses
//   `StreamableHTTPClientTransport`, `sse` the legacy HTTP+SSE transport
//   (`SSEClientTransport`: GET the URL for an `endpoint` event, POST there).
// * v2 is `@modelcontextprotocol/client` 2.x. `--mode auto` (the default here;
//   the SDK's own default is legacy) probes `server/discover` and, against a
//   2026-07-28 server, runs sessionless: every POST carries the `_meta`
//   envelope. `--mode legacy` is the plain 2025 handshake.
//
// The client connects, lists tools, calls the adding and echoing tools, calls
// the counting tool with a progress callback, reads a text resource,
// subscribes to a resource (`resources/subscribe` in the handshake era,
// `subscriptions/listen` with `resourceSubscriptions` in 2026-07-28), calls
// the tool that changes it, waits for `notifications/resources/updated`, then
// closes (for a session: DELETE first). `--profile everything` maps those
// steps onto `@modelcontextprotocol/server-everything`, the reference server,
// to check this script itself.
//
// Every JSON-RPC message and every HTTP exchange (method, status, headers that
// MCP defines) is recorded. Prints one JSON object (the summary) on stdout.
// Exits non-zero, with the reason and the last messages on stderr, if
// anything fails.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const TIMEOUT_MS = 90_000;
const UPDATE_WAIT_MS = 15_000;

const PROFILES = {
    arbor: {
        add: ['add', { a: 2, b: 3.5 }],
        echo: ['echo', { message: 'hello from typescript' }],
        count: ['count', { steps: 5, step_ms: 100 }],
        readme: 'arbor://demo/readme',
        counter: 'arbor://demo/counter',
        bump: ['bump', {}],
        unknownTool: 'no_such_tool',
    },
    // @modelcontextprotocol/server-everything: tools get-sum, echo,
    // trigger-long-running-operation; static documents; the
    // toggle-subscriber-updates tool starts updates for every subscribed URI.
    everything: {
        add: ['get-sum', { a: 2, b: 3.5 }],
        echo: ['echo', { message: 'hello from typescript' }],
        count: ['trigger-long-running-operation', { duration: 0.5, steps: 5 }],
        readme: 'demo://resource/static/document/features.md',
        counter: 'demo://resource/static/document/features.md',
        bump: ['toggle-subscriber-updates', {}],
        unknownTool: 'no_such_tool',
    },
};

class Failure extends Error {}

function check(condition, what) {
    if (!condition) throw new Failure(what);
}

function parseArgs(argv) {
    const [sdk, transport, url, ...rest] = argv;
    const usage =
        'usage: interop.mjs <v1|v2> <streamable|sse> <url> [--mode auto|legacy] [--profile arbor|everything] [--no-subscribe]';
    if (!['v1', 'v2'].includes(sdk) || !['streamable', 'sse'].includes(transport) || !url) throw new Failure(usage);
    const opts = { sdk, transport, url, mode: sdk === 'v2' ? 'auto' : 'legacy', profile: 'arbor', subscribe: true };
    for (let i = 0; i < rest.length; i += 2) {
        const [flag, value] = [rest[i], rest[i + 1]];
        if (flag === '--no-subscribe') {
            opts.subscribe = false;
            i -= 1;
        } else if (flag === '--mode' && ['auto', 'legacy'].includes(value)) opts.mode = value;
        else if (flag === '--profile' && value in PROFILES) opts.profile = value;
        else throw new Failure(usage);
    }
    check(sdk === 'v2' || opts.mode === 'legacy', 'the 1.x SDK has no version negotiation: --mode legacy only');
    return opts;
}

function packageVersion(name) {
    return JSON.parse(readFileSync(join(HERE, 'node_modules', name, 'package.json'), 'utf8')).version;
}

// Request headers worth reporting: the ones MCP defines, and the content negotiation.
const REPORTED_REQUEST_HEADERS = ['accept', 'content-type', 'last-event-id'];
const REPORTED_RESPONSE_HEADERS = ['content-type', 'mcp-session-id', 'mcp-protocol-version'];

function reportedHeaders(headers, names) {
    const out = {};
    for (const [name, value] of headers) {
        const lower = name.toLowerCase();
        if (names.includes(lower) || lower.startsWith('mcp-')) out[lower] = value;
    }
    return out;
}

function rpcSummary(body) {
    if (typeof body !== 'string') return undefined;
    try {
        const parsed = JSON.parse(body);
        const one = m => (m.method ? m.method : 'id' in m ? `response:${m.id}` : '?');
        return Array.isArray(parsed) ? parsed.map(one) : one(parsed);
    } catch {
        return 'unparsable';
    }
}

/**
 * A fetch that records every exchange, failed ones with their body. Keeps
 * the POSTs and DELETEs in flight in `pending`: on the legacy SSE transport a
 * response arrives on the stream, possibly before the POST that carried the
 * request has its 202, and closing the client would abort that POST.
 */
function recordingFetch(http, pending) {
    return (input, init = {}) => {
        const exchange = recordedExchange(http, input, init);
        if ((init.method ?? 'GET') !== 'GET') {
            pending.add(exchange);
            exchange.finally(() => pending.delete(exchange)).catch(() => {});
        }
        return exchange;
    };
}

async function recordedExchange(http, input, init) {
    const request = new Request(input, init);
    const entry = {
        method: request.method,
        path: new URL(request.url).pathname + new URL(request.url).search,
        rpc: rpcSummary(init.body),
        request_headers: reportedHeaders(request.headers, REPORTED_REQUEST_HEADERS),
    };
    http.push(entry);
    let response;
    try {
        response = await fetch(input, init);
    } catch (e) {
        entry.error = String(e?.cause ?? e);
        throw e;
    }
    entry.status = response.status;
    entry.response_headers = reportedHeaders(response.headers, REPORTED_RESPONSE_HEADERS);
    if (response.status >= 400) {
        entry.body = (await response.clone().text()).slice(0, 2000);
    }
    return response;
}

/** Records the JSON-RPC messages a transport sends and delivers. */
function teeTransport(transport, wire) {
    const send = transport.send.bind(transport);
    transport.send = (message, options) => {
        wire.push(['out', message]);
        return send(message, options);
    };
    let onmessage;
    Object.defineProperty(transport, 'onmessage', {
        configurable: true,
        get: () => onmessage,
        set: handler => {
            onmessage =
                handler &&
                ((message, extra) => {
                    wire.push(['in', message]);
                    return handler(message, extra);
                });
        },
    });
    return transport;
}

function textOf(result, what) {
    check(Array.isArray(result.content) && result.content.length === 1, `${what}: expected one content block, got ${JSON.stringify(result)}`);
    const block = result.content[0];
    check(block.type === 'text', `${what}: expected a text block, got ${JSON.stringify(block)}`);
    return block.text;
}

function resourceText(result, what) {
    check(Array.isArray(result.contents) && result.contents.length === 1, `${what}: expected one content, got ${JSON.stringify(result)}`);
    return result.contents[0];
}

async function errorOf(call) {
    try {
        const result = await call();
        return { result };
    } catch (e) {
        return { code: e?.code, message: String(e?.message ?? e), exception: e?.constructor?.name };
    }
}

async function waitFor(predicate, ms) {
    const deadline = Date.now() + ms;
    while (!predicate() && Date.now() < deadline) await new Promise(r => setTimeout(r, 20));
    return predicate();
}

async function loadSdk(sdk) {
    if (sdk === 'v1') {
        const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
        const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
        const { SSEClientTransport } = await import('@modelcontextprotocol/sdk/client/sse.js');
        const types = await import('@modelcontextprotocol/sdk/types.js');
        return {
            version: packageVersion('@modelcontextprotocol/sdk'),
            Client,
            StreamableHTTPClientTransport,
            SSEClientTransport,
            onNotification: (client, method, handler) => {
                const schema = {
                    'notifications/resources/updated': types.ResourceUpdatedNotificationSchema,
                    'notifications/message': types.LoggingMessageNotificationSchema,
                }[method];
                client.setNotificationHandler(schema, handler);
            },
            callTool: (client, params, options) => client.callTool(params, undefined, options),
        };
    }
    const v2 = await import('@modelcontextprotocol/client');
    return {
        version: packageVersion('@modelcontextprotocol/client'),
        Client: v2.Client,
        StreamableHTTPClientTransport: v2.StreamableHTTPClientTransport,
        SSEClientTransport: v2.SSEClientTransport,
        onNotification: (client, method, handler) => client.setNotificationHandler(method, handler),
        callTool: (client, params, options) => client.callTool(params, options),
    };
}

async function run(opts, wire, http, summary) {
    const profile = PROFILES[opts.profile];
    const sdk = await loadSdk(opts.sdk);
    Object.assign(summary, {
        sdk: opts.sdk,
        sdk_version: sdk.version,
        transport: opts.transport,
        mode: opts.mode,
        profile: opts.profile,
    });

    const clientOptions = { capabilities: {} };
    if (opts.sdk === 'v2') clientOptions.versionNegotiation = { mode: opts.mode };
    const client = new sdk.Client({ name: `arbor-interop-ts-${opts.sdk}`, version: '0.0.0' }, clientOptions);
    const errors = [];
    client.onerror = e => errors.push(String(e?.message ?? e));

    const updates = [];
    sdk.onNotification(client, 'notifications/resources/updated', n => updates.push(n.params.uri));
    const logs = [];
    sdk.onNotification(client, 'notifications/message', n => logs.push(n.params));

    const url = new URL(opts.url);
    const pending = new Set();
    const fetch = recordingFetch(http, pending);
    const transport = teeTransport(
        opts.transport === 'sse'
            ? new sdk.SSEClientTransport(url, { fetch })
            : new sdk.StreamableHTTPClientTransport(url, { fetch }),
        wire,
    );

    await client.connect(transport);
    summary.era = opts.sdk === 'v2' ? client.getProtocolEra() : 'legacy';
    summary.protocol_version =
        opts.sdk === 'v2' ? client.getNegotiatedProtocolVersion() : initializedVersion(wire);
    summary.session_id_assigned = Boolean(transport.sessionId);
    const info = client.getServerVersion();
    summary.server_info = info ? { name: info.name, version: info.version } : null;
    summary.server_capabilities = Object.keys(client.getServerCapabilities() ?? {}).sort();

    const tools = await client.listTools();
    summary.tools = tools.tools.map(t => t.name);

    const add = await sdk.callTool(client, { name: profile.add[0], arguments: profile.add[1] });
    check(!add.isError, `add failed: ${JSON.stringify(add)}`);
    summary.add = textOf(add, 'add');

    const echo = await sdk.callTool(client, { name: profile.echo[0], arguments: profile.echo[1] });
    check(!echo.isError, `echo failed: ${JSON.stringify(echo)}`);
    summary.echo = textOf(echo, 'echo');

    const progress = [];
    const count = await sdk.callTool(
        client,
        { name: profile.count[0], arguments: profile.count[1] },
        { onprogress: p => progress.push({ progress: p.progress, total: p.total ?? null }) },
    );
    check(!count.isError, `count failed: ${JSON.stringify(count)}`);
    summary.count = textOf(count, 'count');
    summary.progress = progress;

    const readme = resourceText(await client.readResource({ uri: profile.readme }), 'read readme');
    summary.resource = { uri: readme.uri, mime_type: readme.mimeType ?? null, text: readme.text ?? null };

    // Subscribe, the era's way (unless --no-subscribe).
    let subscription;
    if (opts.subscribe) {
        subscription = await subscribeAndBump(client, sdk, profile, opts, summary, updates);
    }

    summary.unknown_tool = await errorOf(() =>
        sdk.callTool(client, { name: profile.unknownTool, arguments: {} }),
    );

    // Close: the subscription, then the session (DELETE), then the client,
    // once no message is still being POSTed.
    if (subscription) {
        await subscription.close();
        summary.subscription.closed = await Promise.race([
            subscription.closed,
            new Promise(r => setTimeout(() => r('not within 5 s'), 5000)),
        ]);
    } else if (opts.subscribe && opts.profile === 'arbor') {
        await client.unsubscribeResource({ uri: profile.counter });
    }
    await Promise.race([Promise.allSettled([...pending]), new Promise(r => setTimeout(r, 5000))]);
    if (opts.transport === 'streamable' && transport.sessionId) {
        await transport.terminateSession();
        summary.session_terminated = transport.sessionId === undefined;
    }
    await client.close();
    summary.closed = true;
    summary.logs = logs.length;
    summary.client_errors = errors;
}

/** Subscribes to the counter, bumps it, waits for the update; returns a 2026 subscription to close. */
async function subscribeAndBump(client, sdk, profile, opts, summary, updates) {
    const before = resourceText(await client.readResource({ uri: profile.counter }), 'read counter');
    summary.counter_before = before.text ?? null;

    let subscription;
    if (summary.era === 'modern') {
        subscription = await client.listen({ resourceSubscriptions: [profile.counter] });
        summary.subscription = { method: 'subscriptions/listen', honored: subscription.honoredFilter };
    } else {
        await client.subscribeResource({ uri: profile.counter });
        summary.subscription = { method: 'resources/subscribe' };
    }

    const bump = await sdk.callTool(client, { name: profile.bump[0], arguments: profile.bump[1] });
    check(!bump.isError, `bump failed: ${JSON.stringify(bump)}`);
    summary.bump = textOf(bump, 'bump');
    summary.update_received = await waitFor(() => updates.includes(profile.counter), UPDATE_WAIT_MS);
    summary.updates = [...updates];

    const after = resourceText(await client.readResource({ uri: profile.counter }), 'read counter');
    summary.counter_after = after.text ?? null;
    return subscription;
}

/** The protocol version the `initialize` result named (1.x has no getter for it). */
function initializedVersion(wire) {
    const request = wire.find(([d, m]) => d === 'out' && m.method === 'initialize');
    const response = request && wire.find(([d, m]) => d === 'in' && m.id === request[1].id && !m.method);
    return response?.[1].result?.protocolVersion ?? null;
}

function summariseWire(wire) {
    const out = wire.filter(([d]) => d === 'out').map(([, m]) => m);
    const incoming = wire.filter(([d]) => d === 'in').map(([, m]) => m);
    const envelope = m => m.params?._meta?.['io.modelcontextprotocol/protocolVersion'] ?? null;
    return {
        requests: out.filter(m => m.method && 'id' in m).map(m => m.method),
        notifications_sent: out.filter(m => m.method && !('id' in m)).map(m => m.method),
        notifications_received: incoming.filter(m => m.method && !('id' in m)).map(m => m.method),
        request_envelope_versions: [...new Set(out.filter(m => m.method && 'id' in m).map(m => String(envelope(m))))].sort(),
        error_codes: incoming.filter(m => m.error).map(m => m.error.code),
    };
}

function summariseHttp(http) {
    return {
        exchanges: http.map(e => `${e.method} ${e.path} ${JSON.stringify(e.rpc ?? null)} -> ${e.status ?? e.error}`),
        statuses: [...new Set(http.map(e => e.status ?? 'error'))].sort(),
        protocol_version_headers: [...new Set(http.map(e => e.request_headers['mcp-protocol-version'] ?? 'none'))].sort(),
        session_header_sent: http.filter(e => e.request_headers['mcp-session-id']).length,
        accept_headers: [...new Set(http.map(e => `${e.method} ${e.request_headers.accept ?? 'none'}`))].sort(),
        mcp_request_headers: [...new Set(http.flatMap(e => Object.keys(e.request_headers).filter(h => h.startsWith('mcp-'))))].sort(),
        failures: http.filter(e => e.error || e.status >= 400),
    };
}

async function main() {
    const wire = [];
    const http = [];
    const summary = {};
    let opts;
    const timer = setTimeout(() => {
        console.error(`interop.mjs: timed out after ${TIMEOUT_MS} ms`);
        report(summary, wire, http);
        process.exit(1);
    }, TIMEOUT_MS);
    try {
        opts = parseArgs(process.argv.slice(2));
        await run(opts, wire, http, summary);
    } catch (e) {
        clearTimeout(timer);
        const label = opts ? `${opts.sdk} ${opts.transport} ${opts.mode}` : '';
        console.error(
            e instanceof Failure ? `interop.mjs (${label}): check failed: ${e.message}` : `interop.mjs (${label}): ${e?.stack ?? e}`,
        );
        if (e?.cause) console.error(`caused by: ${e.cause?.stack ?? e.cause}`);
        report(summary, wire, http);
        process.exit(1);
    }
    clearTimeout(timer);
    summary.wire = summariseWire(wire);
    summary.http = summariseHttp(http);
    console.log(JSON.stringify(summary));
    process.exit(0);
}

function report(summary, wire, http) {
    console.error(`summary so far: ${JSON.stringify(summary)}`);
    console.error('HTTP exchanges (the last 30):');
    for (const e of http.slice(-30)) console.error(`  ${JSON.stringify(e)}`);
    console.error('wire (the last 30 messages; out = client to server):');
    for (const [d, m] of wire.slice(-30)) console.error(`  ${d.padStart(3)} ${JSON.stringify(m)}`);
}

await main();
