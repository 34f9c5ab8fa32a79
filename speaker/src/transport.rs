//! How the session sockets are protected: TCP-MD5 signatures (RFC 2385) keyed
//! per peer on the listener and on each connecting socket, and GTSM (RFC 5082),
//! which sends with TTL 255 and drops segments that crossed more hops than allowed.
//! Thin wrappers over setsockopt; the errors say which option failed.

use std::io;
use std::net::IpAddr;
use std::os::fd::RawFd;

/// The kernel's limit on a TCP-MD5 key (TCP_MD5SIG_MAXKEYLEN).
pub const MAX_MD5_KEY: usize = 80;

/// `struct tcp_md5sig` of linux/tcp.h.
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefix_len: u8,
    key_len: u16,
    ifindex: libc::c_int,
    key: [u8; MAX_MD5_KEY],
}

/// Sets (or with `None` removes) the TCP-MD5 key for segments to and from `peer`
/// on `fd`. `fd_is_v6`: an IPv6 socket takes IPv4 peers as mapped addresses.
pub fn set_md5_key(fd: RawFd, fd_is_v6: bool, peer: IpAddr, key: Option<&[u8]>) -> io::Result<()> {
    let key = key.unwrap_or_default();
    if key.len() > MAX_MD5_KEY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("TCP-MD5 key longer than {MAX_MD5_KEY} bytes"),
        ));
    }
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut sig: TcpMd5Sig = unsafe { std::mem::zeroed() };
    sig.key_len = key.len() as u16;
    sig.key[..key.len()].copy_from_slice(key);
    let peer = match (fd_is_v6, peer) {
        (true, IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
        (_, p) => p,
    };
    match peer {
        IpAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe { &mut *(&mut sig.addr as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr.s_addr = u32::from(v4).to_be();
        }
        IpAddr::V6(v6) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut sig.addr as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr.s6_addr = v6.octets();
        }
    }
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_MD5SIG, &sig).map_err(|e| with_context(e, "TCP_MD5SIG"))
}

/// GTSM for a session with `peer` at most `hops` hops away: send with TTL (hop
/// limit) 255, accept only segments that arrive with at least 256 - `hops`.
pub fn set_ttl_security(fd: RawFd, peer: IpAddr, hops: u8) -> io::Result<()> {
    let min: libc::c_int = 256 - libc::c_int::from(hops.max(1));
    let max: libc::c_int = 255;
    let (level, ttl, min_ttl, names) = match peer {
        IpAddr::V4(_) => (libc::IPPROTO_IP, libc::IP_TTL, libc::IP_MINTTL, ("IP_TTL", "IP_MINTTL")),
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => {
            (libc::IPPROTO_IP, libc::IP_TTL, libc::IP_MINTTL, ("IP_TTL", "IP_MINTTL"))
        }
        IpAddr::V6(_) => (
            libc::IPPROTO_IPV6,
            libc::IPV6_UNICAST_HOPS,
            libc::IPV6_MINHOPCOUNT,
            ("IPV6_UNICAST_HOPS", "IPV6_MINHOPCOUNT"),
        ),
    };
    setsockopt(fd, level, ttl, &max).map_err(|e| with_context(e, names.0))?;
    setsockopt(fd, level, min_ttl, &min).map_err(|e| with_context(e, names.1))
}

/// Keeps the headers of each SYN a listener receives, so that an accepted
/// connection's first segment can be checked (GTSM on the SYN: the TTL the
/// listener's own minimum cannot check per peer).
pub fn save_syn(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_SAVE_SYN, &on).map_err(|e| with_context(e, "TCP_SAVE_SYN"))
}

/// The TTL (IPv4) or hop limit (IPv6) the SYN of an accepted connection arrived
/// with, when its listener saved it ([`save_syn`]). Read once: the kernel frees it.
pub fn syn_ttl(fd: RawFd) -> io::Result<Option<u8>> {
    let mut buf = [0u8; 512];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `buf` and updates `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_SAVED_SYN,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(with_context(io::Error::last_os_error(), "TCP_SAVED_SYN"));
    }
    Ok(syn_header_ttl(&buf[..len as usize]))
}

/// The TTL or hop limit of a saved SYN's IP header.
fn syn_header_ttl(header: &[u8]) -> Option<u8> {
    match header.first()? >> 4 {
        4 => header.get(8).copied(),
        6 => header.get(7).copied(),
        _ => None,
    }
}

/// The kernel's count of segments dropped for a wrong or missing TCP-MD5
/// signature in this network namespace (`TcpExt: TCPMD5Failure` + `TCPMD5NotFound`).
pub fn md5_failures() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = text.lines();
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        if !names.starts_with("TcpExt:") {
            continue;
        }
        let sum = names
            .split_whitespace()
            .zip(values.split_whitespace())
            .filter(|(n, _)| matches!(*n, "TCPMD5Failure" | "TCPMD5NotFound"))
            .filter_map(|(_, v)| v.parse::<u64>().ok())
            .sum();
        return Some(sum);
    }
    None
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points at a live T of the size we pass.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// An integer socket option, the error naming it (`option`).
pub(crate) fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
    option: &str,
) -> io::Result<()> {
    setsockopt(fd, level, name, &value).map_err(|e| with_context(e, option))
}

fn with_context(e: io::Error, option: &str) -> io::Error {
    io::Error::new(e.kind(), format!("setsockopt {option}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn ttl_of_saved_syn_headers() {
        let v4 = [0x45, 0, 0, 60, 0, 0, 0x40, 0, 254, 6];
        assert_eq!(syn_header_ttl(&v4), Some(254));
        let v6 = [0x60, 0, 0, 0, 0, 40, 6, 255];
        assert_eq!(syn_header_ttl(&v6), Some(255));
        assert_eq!(syn_header_ttl(&[]), None);
    }

    #[test]
    fn md5_key_struct_matches_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<TcpMd5Sig>(), 216);
    }

    #[test]
    fn keys_and_gtsm_are_accepted_by_the_kernel() {
        let v6 = std::net::TcpListener::bind("[::1]:0").unwrap();
        let fd = v6.as_raw_fd();
        set_md5_key(fd, true, "10.0.0.2".parse().unwrap(), Some(b"secret")).unwrap();
        set_md5_key(fd, true, "fd00::2".parse().unwrap(), Some(b"secret")).unwrap();
        set_md5_key(fd, true, "fd00::2".parse().unwrap(), None).unwrap();
        assert!(set_md5_key(fd, true, "fd00::2".parse().unwrap(), Some(&[b'x'; 81])).is_err());
        set_ttl_security(fd, "fd00::2".parse().unwrap(), 1).unwrap();
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        set_md5_key(v4.as_raw_fd(), false, "10.0.0.2".parse().unwrap(), Some(b"secret")).unwrap();
        set_ttl_security(v4.as_raw_fd(), "10.0.0.2".parse().unwrap(), 2).unwrap();
    }
}
