"""A Flask app answering GET / with who it is ({app, instance, port, pid}), run by gunicorn.

    pmdaemon start /usr/bin/gunicorn --name flask --socket --port 3000 \
        --cwd examples/apps/flask -- --workers 2 app:app

gunicorn reads systemd's LISTEN_FDS/LISTEN_PID itself: started with a socket it serves on the
listener the daemon hands over as fd 3 (no --bind needed), and it sends READY=1 to
$NOTIFY_SOCKET by itself once its arbiter runs, so `--ready notify` works as it is. Without a
socket gunicorn binds 0.0.0.0:$PORT.

pid is the pid of the gunicorn worker that answered; NOTIFY_STATUS=text makes each worker send
that status line (with its pid) when it starts.
"""
import os
import socket

from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/")
def who():
    return jsonify(
        app=os.environ.get("PMDAEMON_APP_NAME", ""),
        instance=os.environ.get("PM2_INSTANCE_ID", ""),
        port=os.environ.get("PORT", ""),
        pid=os.getpid(),
    )


def notify(message):
    """Send one sd_notify datagram ("@" in NOTIFY_SOCKET names an abstract socket)."""
    addr = os.environ["NOTIFY_SOCKET"]
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(addr)
        s.sendall(message.encode())


if os.environ.get("NOTIFY_STATUS") and os.environ.get("NOTIFY_SOCKET"):
    notify("STATUS=%s (worker %d)" % (os.environ["NOTIFY_STATUS"], os.getpid()))
