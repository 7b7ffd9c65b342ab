// reload-web answers every request with a small JSON document. It is the app of the
// reload-under-load metric of bench/compare, run unchanged under pmdaemon (with and without
// --socket) and PM2 (fork and cluster mode). Plain `http` module, no npm dependencies.
//
// Where it listens: on fd 3 when the socket-activation variables are meant for this very
// process (LISTEN_FDS=1 and LISTEN_PID equal to its pid: a variable inherited from a parent is
// not an invitation); else on PORT at HOST (default 127.0.0.1). Under PM2 cluster mode the
// cluster module turns the listen on PORT into a share of the master's socket.
//
// SIGTERM (pmdaemon's stop signal) and SIGINT (PM2's): stop accepting, let the requests in
// flight finish, then exit, so that a reload that stops this instance fails none of them.
'use strict';

const http = require('http');

const inherited = process.env.LISTEN_FDS === '1' && process.env.LISTEN_PID === String(process.pid);

const server = http.createServer((req, res) => {
  const body = JSON.stringify({ ok: true, pid: process.pid, instance: process.env.NODE_APP_INSTANCE ?? null });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});

function where() {
  if (inherited) {
    return { fd: 3 };
  }
  const port = Number(process.env.PORT);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    console.error(`reload-web: PORT must be a port number, got ${JSON.stringify(process.env.PORT)} (and no LISTEN_FDS for this pid)`);
    process.exit(2);
  }
  return { port, host: process.env.HOST || '127.0.0.1' };
}

server.on('error', (err) => {
  console.error(`reload-web: listen ${JSON.stringify(where())}: ${err.message}`);
  process.exit(1);
});

server.listen(where());

let closing = false;
function drain(signal) {
  if (closing) {
    return;
  }
  closing = true;
  server.close(() => process.exit(0));
  // Idle keep-alive sockets would hold close() open; requests in flight still finish.
  if (server.closeIdleConnections) {
    server.closeIdleConnections();
  }
  console.log(`reload-web ${process.pid}: ${signal}: draining`);
}
process.on('SIGTERM', () => drain('SIGTERM'));
process.on('SIGINT', () => drain('SIGINT'));
