//! UDP sockets: one per user agent and address family, shared by its registerers.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use mio::net::UdpSocket;

/// Binds a non-blocking UDP socket: on the configured local address, or on
/// the unspecified address of the family (`v6`).
pub fn bind(local: Option<SocketAddr>, v6: bool) -> io::Result<UdpSocket> {
    let addr = match local {
        Some(l) if l.is_ipv6() == v6 => l,
        Some(l) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("local address {l} is not of the target's address family"),
            ))
        }
        None if !v6 => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        None => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    };
    let sock = UdpSocket::bind(addr)?;
    enable_error_queue(&sock, v6);
    Ok(sock)
}

/// The local IP the kernel would use to reach `target` (no packet is sent).
pub fn route_ip(target: SocketAddr) -> io::Result<IpAddr> {
    let any: SocketAddr = if target.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let probe = std::net::UdpSocket::bind(any)?;
    probe.connect(target)?;
    Ok(probe.local_addr()?.ip())
}

/// Asks the kernel to queue ICMP errors (port unreachable …) on the socket so an
/// unreachable registrar is reported at once instead of after Timer F.
fn enable_error_queue(sock: &UdpSocket, v6: bool) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    let (level, name) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVERR)
    } else {
        (libc::IPPROTO_IP, libc::IP_RECVERR)
    };
    // SAFETY: valid fd, option value points to a c_int of the given size.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Whether a send error is a report of an earlier ICMP error (the socket's
/// pending error, maybe for another target on a shared socket), not a
/// failure of the send itself: the send is made again, and the error is
/// handled from the error queue, with its destination, like any other.
pub(super) fn is_icmp_report(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}

/// Reads one queued ICMP error: the destination the failed datagram was sent to
/// and the error. `None` when the queue is empty.
pub fn take_queued_error(sock: &UdpSocket) -> Option<(Option<SocketAddr>, io::Error)> {
    use std::os::fd::AsRawFd;
    let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut data = [0u8; 512];
    let mut control = [0u8; 512];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain data; every pointer in it refers to a live local buffer.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = control.len() as _;
    // SAFETY: fd is valid and msg describes writable buffers of the stated sizes.
    let n = unsafe {
        libc::recvmsg(
            sock.as_raw_fd(),
            &mut msg,
            libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return None;
    }
    let dest = sockaddr_to_std(&name, msg.msg_namelen);
    let mut err = None;
    // SAFETY: CMSG_* walk the control buffer the kernel just filled, bounded by msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            let is_err = (c.cmsg_level == libc::IPPROTO_IP && c.cmsg_type == libc::IP_RECVERR)
                || (c.cmsg_level == libc::IPPROTO_IPV6 && c.cmsg_type == libc::IPV6_RECVERR);
            if is_err {
                let ee = std::ptr::read_unaligned(
                    libc::CMSG_DATA(cmsg) as *const libc::sock_extended_err
                );
                err = Some(io::Error::from_raw_os_error(ee.ee_errno as i32));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Some((
        dest,
        err.unwrap_or_else(|| io::Error::other("unknown socket error")),
    ))
}

/// The socket address in `ss` (of `len` bytes), if it is IPv4 or IPv6.
pub(super) fn sockaddr_to_std(
    ss: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> Option<SocketAddr> {
    match ss.ss_family as libc::c_int {
        libc::AF_INET if len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::new(ip.into(), u16::from_be(a.sin_port)))
        }
        libc::AF_INET6 if len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::new(ip.into(), u16::from_be(a.sin6_port)))
        }
        _ => None,
    }
}

/// Writes `addr` into `ss` and returns its length.
pub(super) fn std_to_sockaddr(
    addr: SocketAddr,
    ss: &mut libc::sockaddr_storage,
) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for a sockaddr_in.
            let s = unsafe { &mut *(ss as *mut libc::sockaddr_storage as *mut libc::sockaddr_in) };
            s.sin_family = libc::AF_INET as libc::sa_family_t;
            s.sin_port = a.port().to_be();
            s.sin_addr = libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            };
            // (A reused storage may hold an earlier address's bytes here.)
            s.sin_zero = [0; 8];
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for a sockaddr_in6.
            let s = unsafe { &mut *(ss as *mut libc::sockaddr_storage as *mut libc::sockaddr_in6) };
            s.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            s.sin6_port = a.port().to_be();
            s.sin6_flowinfo = a.flowinfo();
            s.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            s.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_port_unreachable_is_queued_with_the_destination() {
        // A port nobody listens on: bind one, note it, close it.
        let closed = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let target: SocketAddr = closed;
        let sock = bind(None, target.is_ipv6()).unwrap();
        sock.send_to(b"x", target).unwrap();
        let mut got = None;
        for _ in 0..100 {
            if let Some(e) = take_queued_error(&sock) {
                got = Some(e);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let (dest, err) = got.expect("an ICMP error was queued");
        assert_eq!(dest, Some(target));
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn an_earlier_icmp_error_does_not_fail_a_send_to_another_target() {
        let closed = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let open = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let sock = bind(None, false).unwrap();
        sock.send_to(b"x", closed).unwrap();
        // Wait until the ICMP error is pending on the socket (readable as an error).
        let mut fds = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&sock),
            events: 0,
            revents: 0,
        };
        for _ in 0..100 {
            // SAFETY: one valid pollfd, no timeout.
            if unsafe { libc::poll(&mut fds, 1, 0) } == 1 && fds.revents & libc::POLLERR != 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(
            fds.revents & libc::POLLERR != 0,
            "the ICMP error is pending"
        );
        // The send to the listening socket goes out, the error stays queued.
        let to = open.local_addr().unwrap();
        let failed =
            super::super::batch::SendBuffers::default().send(&sock, &[(to, b"y".as_slice())]);
        assert!(failed.is_empty(), "not refused: {failed:?}");
        let mut buf = [0u8; 4];
        open.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        assert_eq!(open.recv(&mut buf).unwrap(), 1);
        let (dest, _) = take_queued_error(&sock).expect("still queued, with its destination");
        assert_eq!(dest, Some(closed));
    }

    #[test]
    fn route_to_loopback_is_loopback() {
        assert!(route_ip("127.0.0.1:5060".parse().unwrap())
            .unwrap()
            .is_loopback());
    }
}
