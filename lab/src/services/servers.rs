//! The TCP server of an endpoint pod: socat, listening in the pod's namespace on the
//! service's port (IPv4 and IPv6 apart), answering each connection with one line, the
//! pod's name and the client address it saw, and closing it. One server per pod, port
//! and family, started once and known by the PID file it leaves in the pods' process
//! folder, where `pods::delete` finds it to stop it with its pod.

use crate::pods::PROCESS_DIR;

/// A server a node must run: `<pod>_<port>_<4|6>`, the name of its PID file.
pub fn key(pod: &str, port: u16, v4: bool) -> String {
    format!("{pod}_{port}_{}", if v4 { 4 } else { 6 })
}

/// A shell script (for `bash -c`, the keys as arguments) that stops the servers of
/// this folder not named and starts the named ones that do not run.
pub fn reconcile_script() -> String {
    format!(
        r#"set -e
dir={PROCESS_DIR}; mkdir -p "$dir"
wanted=" $* "
for f in "$dir"/*_*_[46].pid; do
  [ -e "$f" ] || continue
  k=$(basename "$f" .pid)
  case "$wanted" in *" $k "*) ;; *) kill "$(cat "$f")" 2>/dev/null || true; rm -f "$f";; esac
done
for k in "$@"; do
  f="$dir/$k.pid"
  if [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then continue; fi
  fam=${{k##*_}}; rest=${{k%_*}}; port=${{rest##*_}}; pod=${{rest%_*}}
  opts="fork,reuseaddr"; [ "$fam" = 6 ] && opts="$opts,ipv6only=1"
  ip netns exec "pod-$pod" setsid socat "TCP$fam-LISTEN:$port,$opts" "SYSTEM:echo $pod \$SOCAT_PEERADDR" </dev/null >/dev/null 2>&1 &
  echo $! >"$f"
done
# Each new server listening before this returns (a client connects right after).
for k in "$@"; do
  fam=${{k##*_}}; rest=${{k%_*}}; port=${{rest##*_}}; pod=${{rest%_*}}
  i=0
  until ip netns exec "pod-$pod" ss -Htln "sport = :$port" | grep -q .; do
    [ $i -lt 50 ] || {{ echo "pod $pod: no server listening on port $port after 5 s" >&2; exit 1; }}
    sleep 0.1; i=$((i + 1))
  done
done
"#
    )
}
