# Serve only on the sockets handed over by the daemon (LISTEN_FDS), never on a port of puma's own.
bind_to_activated_sockets 'only'
