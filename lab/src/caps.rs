//! Capabilities a node container may ask for. `--privileged` fails where the host's own
//! bounding set lacks a capability (CAP_SYS_RESOURCE on some CI sandboxes), so nodes
//! get every capability but the ones this process cannot grant.

/// Linux capability names by number, as Docker spells them.
const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Capabilities missing from this process's bounding set, to drop from `ALL`.
pub fn missing_from_bounding_set() -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    missing(&status)
}

fn missing(status: &str) -> Vec<String> {
    let Some(mask) = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    else {
        return Vec::new();
    };
    NAMES
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1 << bit) == 0)
        .map(|(_, n)| n.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::missing;

    #[test]
    fn finds_missing_capabilities() {
        assert_eq!(missing("CapBnd:\t000001fffeffffff\n"), vec!["SYS_RESOURCE".to_string()]);
        assert!(missing("CapBnd:\t000001ffffffffff\n").is_empty());
        assert!(missing("nothing").is_empty());
    }
}
