package api

// OlderVersion is the version noted for a daemon that sends no Pmdaemon-Version header: one
// from before 0.2.0, whose wire format differs (durations in nanoseconds only, errors under
// "error"). The CLI tells the user to run pmdaemon update.
const OlderVersion = "older than 0.2.0"
