// A Node app on the plain http module (no npm install): it answers GET / with who it is
// ({app, instance, port, pid}).
//
// Started with a socket (pmdaemon start --socket), it serves on the listener the daemon hands
// over as fd 3 (systemd's LISTEN_FDS protocol) instead of binding $PORT, so a reload or a
// restart refuses no connection: the socket stays open in the daemon while no instance accepts.
//
// Node's dgram module has no unix datagram sockets, so this app cannot send sd_notify's
// READY=1 itself; its readiness is its socket accepting a connection.
'use strict';
const http = require('http');

const who = JSON.stringify({
  app: process.env.PMDAEMON_APP_NAME || '',
  instance: process.env.PM2_INSTANCE_ID || '',
  port: process.env.PORT || '',
  pid: process.pid,
});

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(who + '\n');
});

// LISTEN_PID guards against a variable inherited from a parent that was meant for it.
const handedOver = process.env.LISTEN_FDS === '1' && process.env.LISTEN_PID === String(process.pid);
const where = handedOver ? { fd: 3 } : { port: Number(process.env.PORT || 8080), host: process.env.HOST || '127.0.0.1' };
server.listen(where, () => {
  console.log(`instance ${process.env.PM2_INSTANCE_ID} of ${process.env.PMDAEMON_APP_NAME} listening on ${handedOver ? 'fd 3' : where.host + ':' + where.port}`);
});

// SIGTERM (the stop signal of a reload): stop accepting, finish the requests in flight, go.
// Idle connections would keep close() waiting, hence closeIdleConnections.
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
