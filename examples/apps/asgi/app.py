"""A plain ASGI app (no framework) answering GET / with who it is ({app, instance, port, pid}),
for uvicorn:

    pmdaemon start /usr/bin/uvicorn --name api --port 3000 --socket shared -i 2 \
        -- --fd 3 --app-dir examples/apps/asgi app:app

uvicorn does not read LISTEN_FDS: `--fd 3` tells it where the daemon's socket is. SIGTERM is
its graceful shutdown.
"""
import json
import os

WHO = json.dumps(
    {
        "app": os.environ.get("PMDAEMON_APP_NAME", ""),
        "instance": os.environ.get("PM2_INSTANCE_ID", ""),
        "port": os.environ.get("PORT", ""),
        "pid": os.getpid(),
    }
).encode()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": WHO})
