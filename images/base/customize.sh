#!/bin/sh
# mmdebstrap customize hook: runs on the host with the new root file system in $1.
# Enables FRR's bgpd and bfdd (zebra is always on), adds the lab's ExaBGP starter,
# and trims what a container never uses.
set -eu
root="$1"
sed -i 's/^bgpd=no/bgpd=yes/; s/^bfdd=no/bfdd=yes/' "$root/etc/frr/daemons"
mkdir -p "$root/run/bird" "$root/etc/gobgp" "$root/etc/exabgp"
# ExaBGP as a lab node runs it: as root (its default user, nobody, could not open the
# CLI's pipes), in the background, its PID in a file; the CLI (`exabgp-cli`) talks to
# it over the named pipes /run/exabgp/exabgp.{in,out}. Does nothing when it runs.
cat >"$root/usr/local/sbin/exabgp-start" <<'SCRIPT'
#!/bin/sh
set -eu
pid=/run/exabgp/exabgp.pid
if [ -f "$pid" ] && kill -0 "$(cat "$pid")" 2>/dev/null; then exit 0; fi
mkdir -p /run/exabgp
rm -f "$pid"
for p in in out; do [ -p "/run/exabgp/exabgp.$p" ] || mkfifo -m 600 "/run/exabgp/exabgp.$p"; done
env exabgp.daemon.user=root exabgp.daemon.daemonize=false exabgp.log.destination=/var/log/exabgp.log \
    python3-exabgp /etc/exabgp/exabgp.conf >>/var/log/exabgp.log 2>&1 &
echo $! >"$pid"
SCRIPT
# ExaBGP's reconnects back off up to 60 s and it has no setting for it: after a node
# restarts a few times its sessions to x1 would take a minute to come back. The lab's
# scripted peer retries every 2 s at most, as the node speakers do.
delay="$root/usr/lib/python3/dist-packages/exabgp/reactor/delay.py"
sed -i 's/self\._next \* 1\.2), 60)/self._next * 1.2), 2)/' "$delay"
grep -q 'self._next \* 1.2), 2)' "$delay" || { echo "customize: ExaBGP's reconnect delay not found in $delay" >&2; exit 1; }
# One API command, checked: exabgp-cli exits 0 whatever ExaBGP made of the command,
# so this waits for ExaBGP's log to say it took the route (or why not), and fails
# unless it did.
cat >"$root/usr/local/sbin/exabgp-do" <<'SCRIPT'
#!/bin/sh
set -eu
log=/var/log/exabgp.log
before=$(wc -l <"$log")
exabgp-cli "$@" >/dev/null
i=0
while [ "$i" -lt 50 ]; do
    new=$(tail -n +"$((before + 1))" "$log")
    case "$new" in
    *"could not parse"* | *"reason:"*) echo "exabgp-do: $*: $new" >&2; exit 1 ;;
    *"route added"* | *"route removed"*) exit 0 ;;
    esac
    sleep 0.1
    i=$((i + 1))
done
echo "exabgp-do: ExaBGP logged nothing within 5 s for: $*" >&2
exit 1
SCRIPT
chmod 755 "$root/usr/local/sbin/exabgp-start" "$root/usr/local/sbin/exabgp-do"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/*
