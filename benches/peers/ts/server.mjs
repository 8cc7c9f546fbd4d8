// `node server.mjs PORT`: the MCP TypeScript SDK 1.x serving what
// `arbor bench` measures — tools `echo` and `bump`, and the subscribable
// resource `arbor://demo/counter` — over Streamable HTTP at
// http://127.0.0.1:PORT/mcp, with stateful sessions (Mcp-Session-Id, a
// standalone GET stream for server notifications).
//
// Written as the SDK's own examples are (simpleStreamableHttp): an McpServer
// and a StreamableHTTPServerTransport per session, kept in a map by session
// id, on the SDK's Express app. Nothing is logged per request; errors go to
// stderr.

import { randomUUID } from 'node:crypto';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import {
  isInitializeRequest,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import * as z from 'zod/v4';

const COUNTER_URI = 'arbor://demo/counter';
const HOST = '127.0.0.1';
/** Sessions with no open request or stream are closed after this long idle. */
const IDLE_MS = 30 * 60_000;

const port = Number.parseInt(process.argv[2] ?? '', 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('usage: node server.mjs PORT');
  process.exit(2);
}

// State shared by every session: the counter and the sessions subscribed to it.
let counter = 0;
/** @type {Set<McpServer>} */
const subscribers = new Set();

/** Tells every subscribed session that the counter changed. */
async function notifySubscribers() {
  const servers = [...subscribers];
  const sent = await Promise.allSettled(
    servers.map((server) => server.server.sendResourceUpdated({ uri: COUNTER_URI })),
  );
  sent.forEach((result, i) => {
    if (result.status === 'rejected') subscribers.delete(servers[i]);
  });
}

/** One session's server: the tools, the resource and its subscriptions. */
function createServer() {
  const server = new McpServer(
    { name: 'ts-sdk-peer', version: '0.0.0' },
    { capabilities: { resources: { subscribe: true } } },
  );

  server.registerTool(
    'echo',
    {
      description: 'Returns the message it is given.',
      inputSchema: { message: z.string().describe('The text to send back.') },
    },
    async ({ message }) => ({ content: [{ type: 'text', text: message }] }),
  );

  server.registerTool(
    'bump',
    {
      description: `Increments the counter and notifies every subscriber of ${COUNTER_URI}.`,
    },
    async () => {
      counter += 1;
      const value = counter;
      await notifySubscribers();
      return { content: [{ type: 'text', text: String(value) }] };
    },
  );

  server.registerResource(
    'counter',
    COUNTER_URI,
    { description: 'The demo counter; bump increments it.', mimeType: 'text/plain' },
    async (uri) => ({
      contents: [{ uri: uri.href, mimeType: 'text/plain', text: String(counter) }],
    }),
  );

  // McpServer has no subscription API of its own: the low-level server's.
  const checkUri = (uri) => {
    if (uri !== COUNTER_URI) throw new Error(`no resource ${uri}`);
  };
  server.server.setRequestHandler(SubscribeRequestSchema, async (request) => {
    checkUri(request.params.uri);
    subscribers.add(server);
    return {};
  });
  server.server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
    checkUri(request.params.uri);
    subscribers.delete(server);
    return {};
  });

  return server;
}

/** @type {Map<string, {transport: StreamableHTTPServerTransport, open: number, lastActive: number}>} */
const sessions = new Map();

// Counts open responses, so a listening GET stream is not taken for idle.
function trackResponse(session, res) {
  if (!res.socket || res.destroyed) return;
  session.open += 1;
  res.on('close', () => {
    session.open -= 1;
    session.lastActive = Date.now();
  });
}

setInterval(() => {
  const cutoff = Date.now() - IDLE_MS;
  for (const { transport, open, lastActive } of sessions.values()) {
    if (open === 0 && lastActive < cutoff) transport.close().catch(console.error);
  }
}, 60_000).unref();

function jsonRpcError(res, status, code, message) {
  res.status(status).json({ jsonrpc: '2.0', error: { code, message }, id: null });
}

const app = createMcpExpressApp({ host: HOST });

app.post('/mcp', async (req, res) => {
  const sessionId = req.headers['mcp-session-id'];
  try {
    if (sessionId) {
      const session = sessions.get(sessionId);
      if (!session) return jsonRpcError(res, 404, -32001, 'Session not found');
      trackResponse(session, res);
      await session.transport.handleRequest(req, res, req.body);
      return;
    }
    if (!isInitializeRequest(req.body)) {
      return jsonRpcError(res, 400, -32000, 'Bad Request: No valid session ID provided');
    }
    const server = createServer();
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, open: 0, lastActive: Date.now() });
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
      subscribers.delete(server);
    };
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  } catch (error) {
    console.error('error handling MCP request:', error);
    if (!res.headersSent) jsonRpcError(res, 500, -32603, 'Internal server error');
  }
});

// GET (the standalone SSE stream) and DELETE (session end) go to the session's transport.
async function sessionRequest(req, res) {
  const sessionId = req.headers['mcp-session-id'];
  if (!sessionId) return res.status(400).send('Missing session ID');
  const session = sessions.get(sessionId);
  if (!session) return jsonRpcError(res, 404, -32001, 'Session not found');
  try {
    trackResponse(session, res);
    await session.transport.handleRequest(req, res);
  } catch (error) {
    console.error(`error handling MCP ${req.method}:`, error);
    if (!res.headersSent) res.status(500).send('Internal server error');
  }
}
app.get('/mcp', sessionRequest);
app.delete('/mcp', sessionRequest);

const httpServer = app.listen(port, HOST, (error) => {
  if (error) {
    console.error('cannot listen:', error);
    process.exit(1);
  }
});

async function shutdown() {
  httpServer.close();
  await Promise.allSettled([...sessions.values()].map(({ transport }) => transport.close()));
  process.exit(0);
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
