"""Every process this project starts, infrastructure and apps alike, one module per concern:

group (spawn a process group, stop it TERM then KILL) -> record (which processes are ours, by
kernel identity; atomic state files; the state folder's lock) -> probe (readiness probes and
the one deadline poller) -> logs (last lines, the one log follower) -> supervisor (`inv run`:
prefixed output, restart policy; console, spec, status) -> detached (the same supervisor in
the background) -> reload (live reload; zygote, the preforking launcher of Python services).
"""
