//! Batched datagram I/O: many datagrams per system call (`recvmmsg` and
//! `sendmmsg` on Linux, one call per datagram elsewhere), into and out of
//! one reused set of buffers.
//!
//! The receive buffers are allocated once per worker and reused for every
//! read, so a flood of 64 KiB datagrams costs the same bounded memory as
//! quiet traffic (reading each datagram into a fresh `Vec` used to raise
//! the heap by tens of MiB for a few seconds).

use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;

use crate::log::Level;
use crate::log_at;

/// Datagrams per receive or send call.
pub const BATCH: usize = 32;
/// Largest datagram read whole; anything longer is reported as truncated.
pub const MAX_DATAGRAM: usize = 65_535;

/// One datagram read by [`RecvBuffers::recv`].
#[derive(Clone, Copy, Debug)]
pub struct Received {
    /// Bytes in the slot (at most `MAX_DATAGRAM`).
    pub len: usize,
    /// The sender.
    pub from: SocketAddr,
    /// The datagram was longer than `MAX_DATAGRAM`.
    pub truncated: bool,
}

/// The message headers of one batched call, made once and reused: zeroing
/// them for every call (6.5 KiB) cost more than filling in the few fields
/// a call sets.
#[cfg(target_os = "linux")]
struct Headers {
    names: [libc::sockaddr_storage; BATCH],
    iovs: [libc::iovec; BATCH],
    msgs: [libc::mmsghdr; BATCH],
    /// Room for one `UDP_SEGMENT` control message per message.
    ctrl: [[u64; 4]; BATCH],
}

// SAFETY: the pointers in the headers are written at the start of each
// call and followed only by the kernel during it (into buffers their
// owner holds, or the caller's items, borrowed for the call); between
// calls nothing follows them, so the owner may move to another thread.
#[cfg(target_os = "linux")]
unsafe impl Send for Headers {}

#[cfg(target_os = "linux")]
impl Headers {
    fn new() -> Box<Headers> {
        // SAFETY: plain C structs, zero is a valid value for each.
        Box::new(unsafe { std::mem::zeroed() })
    }

    /// Points message `m` at its address slot and at the `k` iovecs from
    /// `first` on, each of `len` bytes; with more than one, a `UDP_SEGMENT`
    /// control message of `len` makes the kernel send them as `k`
    /// datagrams. Every field the kernel reads, set for this call.
    fn point(&mut self, m: usize, first: usize, k: usize, namelen: libc::socklen_t, len: usize) {
        let ctrl = self.ctrl[m].as_mut_ptr().cast::<u8>();
        let msg = &mut self.msgs[m];
        msg.msg_len = 0;
        msg.msg_hdr.msg_name = (&mut self.names[m] as *mut libc::sockaddr_storage).cast();
        msg.msg_hdr.msg_namelen = namelen;
        // SAFETY: `first + k <= BATCH`: the k iovecs are inside the array.
        msg.msg_hdr.msg_iov = unsafe { self.iovs.as_mut_ptr().add(first) };
        msg.msg_hdr.msg_iovlen = k as _;
        msg.msg_hdr.msg_flags = 0;
        if k == 1 {
            msg.msg_hdr.msg_control = std::ptr::null_mut();
            msg.msg_hdr.msg_controllen = 0;
            return;
        }
        // SAFETY: `ctrl` is 32 bytes, 8-aligned: room for one cmsghdr and a
        // u16 (CMSG_SPACE(2) is 24 on 64-bit Linux, 16 on 32-bit).
        unsafe {
            let space = libc::CMSG_SPACE(std::mem::size_of::<u16>() as _) as usize;
            msg.msg_hdr.msg_control = ctrl.cast();
            msg.msg_hdr.msg_controllen = space as _;
            let c = libc::CMSG_FIRSTHDR(&msg.msg_hdr);
            (*c).cmsg_level = libc::SOL_UDP;
            (*c).cmsg_type = libc::UDP_SEGMENT;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as _) as _;
            libc::CMSG_DATA(c).cast::<u16>().write_unaligned(len as u16);
        }
    }

    /// Points message `i` at its address slot and at `iov` alone, with no
    /// control data: every field the kernel reads, set for this call.
    fn set(&mut self, i: usize, iov: libc::iovec, namelen: libc::socklen_t) {
        self.iovs[i] = iov;
        self.point(i, i, 1, namelen, iov.iov_len);
    }
}

#[cfg(not(target_os = "linux"))]
struct Headers;

#[cfg(not(target_os = "linux"))]
impl Headers {
    fn new() -> Box<Headers> {
        Box::new(Headers)
    }
}

/// The reused receive buffers.
pub struct RecvBuffers {
    /// `BATCH` slots of `MAX_DATAGRAM + 1` bytes, one allocation.
    data: Vec<u8>,
    got: Vec<Received>,
    hdrs: Box<Headers>,
}

impl Default for RecvBuffers {
    fn default() -> Self {
        RecvBuffers {
            // Pages are touched only as datagrams fill them.
            data: vec![0u8; BATCH * (MAX_DATAGRAM + 1)],
            got: Vec::with_capacity(BATCH),
            hdrs: Headers::new(),
        }
    }
}

impl RecvBuffers {
    /// Reads up to `BATCH` datagrams. `Ok(0)` when none was waiting.
    pub fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        self.got.clear();
        recv_into(sock, &mut self.data, &mut self.got, &mut self.hdrs)?;
        Ok(self.got.len())
    }

    /// The `i`-th datagram of the last read and its bytes.
    pub fn get(&self, i: usize) -> (Received, &[u8]) {
        let r = self.got[i];
        let start = i * (MAX_DATAGRAM + 1);
        (r, &self.data[start..start + r.len])
    }
}

#[cfg(target_os = "linux")]
fn recv_into(
    sock: &UdpSocket,
    data: &mut [u8],
    got: &mut Vec<Received>,
    hdrs: &mut Headers,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let slot = MAX_DATAGRAM + 1;
    for i in 0..BATCH {
        let iov = libc::iovec {
            iov_base: data[i * slot..].as_mut_ptr().cast(),
            iov_len: slot,
        };
        hdrs.set(i, iov, std::mem::size_of::<libc::sockaddr_storage>() as _);
    }
    // SAFETY: every msghdr points at live buffers of the stated sizes.
    let n = unsafe {
        libc::recvmmsg(
            sock.as_raw_fd(),
            hdrs.msgs.as_mut_ptr(),
            BATCH as _,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::WouldBlock {
            Ok(())
        } else {
            Err(e)
        };
    }
    for i in 0..n as usize {
        let m = &hdrs.msgs[i];
        let Some(from) = super::udp::sockaddr_to_std(&hdrs.names[i], m.msg_hdr.msg_namelen) else {
            continue;
        };
        let len = m.msg_len as usize;
        got.push(Received {
            len: len.min(MAX_DATAGRAM),
            from,
            truncated: len > MAX_DATAGRAM || m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
        });
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn recv_into(
    sock: &UdpSocket,
    data: &mut [u8],
    got: &mut Vec<Received>,
    _hdrs: &mut Headers,
) -> io::Result<()> {
    let slot = MAX_DATAGRAM + 1;
    for i in 0..BATCH {
        match sock.recv_from(&mut data[i * slot..(i + 1) * slot]) {
            Ok((n, from)) => got.push(Received {
                len: n.min(MAX_DATAGRAM),
                from,
                truncated: n > MAX_DATAGRAM,
            }),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if got.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    Ok(())
}

/// The reused headers of batched sends.
pub struct SendBuffers {
    hdrs: Box<Headers>,
    /// Whether runs of equal datagrams may go as one segmented send (see
    /// [`GSO_MAX_LEN`]): asked of the kernel at the first send, off for good
    /// once it refuses one twice in a row.
    gso: Option<bool>,
}

impl Default for SendBuffers {
    fn default() -> Self {
        SendBuffers {
            hdrs: Headers::new(),
            gso: None,
        }
    }
}

/// Whether the kernel knows `UDP_SEGMENT` (Linux 4.18 and later). An older
/// one would not refuse the control message but skip it, and send a run
/// as one datagram of all of them: so it is asked first, by reading the
/// option (which fails with ENOPROTOOPT where it is unknown).
#[cfg(target_os = "linux")]
fn kernel_segments(sock: &UdpSocket) -> bool {
    use std::os::fd::AsRawFd;
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: reads one int option into a local of that size.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    rc == 0
}

#[cfg(not(target_os = "linux"))]
fn kernel_segments(_sock: &UdpSocket) -> bool {
    false
}

/// The longest datagram sent segmented (UDP GSO, Linux `UDP_SEGMENT`): a
/// run of consecutive datagrams of the same length to the same destination
/// goes to the kernel as one message, which it splits into the same
/// datagrams. Every wake-up of the receiver then happens inside one
/// system call, not between datagrams (on loopback the sender was
/// switched out to the receiver after each). Short enough for any path
/// MTU of IPv6's 1 280 bytes or more, so no segment needs fragmenting.
pub const GSO_MAX_LEN: usize = 1_200;

impl SendBuffers {
    /// Sends `items` (destination, bytes) on `sock`, as few calls as possible.
    /// Returns, per item that failed, its index and the error; a full socket
    /// buffer is not a failure (the datagram is lost and Timer E resends it).
    pub fn send(
        &mut self,
        sock: &UdpSocket,
        items: &[(SocketAddr, &[u8])],
    ) -> Vec<(usize, io::Error)> {
        let mut failed = Vec::new();
        let mut done = 0;
        let mut retried = false;
        let mut gso = *self.gso.get_or_insert_with(|| kernel_segments(sock));
        let mut refused = false;
        while done < items.len() {
            let end = (done + BATCH).min(items.len());
            match send_some(sock, &items[done..end], &mut self.hdrs, gso) {
                Err(Failed { first, error, .. }) if first > 1 && refuses_segments(&error) => {
                    if refused {
                        // Refused twice in a row: this kernel or route does
                        // not segment. One message a datagram from now on.
                        log_at!(
                            Level::Debug,
                            "udp: segmented send refused ({error}); sending datagram by datagram"
                        );
                        gso = false;
                        self.gso = Some(false);
                    }
                    // Once may be an earlier datagram's error (an ICMP "too
                    // big") reported on this send: try the same again.
                    refused = true;
                }
                // An earlier datagram's ICMP error, reported on this send: once more.
                Err(Failed { error, .. }) if !retried && super::udp::is_icmp_report(&error) => {
                    retried = true;
                }
                Ok(0) => {
                    // Nothing went (a full buffer): these datagrams are lost.
                    done = end;
                }
                Ok(n) => {
                    done += n;
                    retried = false;
                    refused = false;
                }
                Err(Failed { error, .. }) if error.kind() == io::ErrorKind::WouldBlock => {
                    done = end
                }
                Err(Failed { first, error }) => {
                    // The first message failed: its datagrams (one destination) fail with it.
                    for k in done + 1..done + first {
                        failed.push((k, io::Error::new(error.kind(), error.to_string())));
                    }
                    failed.push((done, error));
                    done += first;
                    retried = false;
                }
            }
        }
        failed.sort_by_key(|(k, _)| *k);
        failed
    }
}

/// A batched send whose first message failed: how many datagrams that
/// message carried, and why.
struct Failed {
    first: usize,
    error: io::Error,
}

/// Whether `e`, from a segmented message, says the kernel or the route
/// cannot segment (not a fault of the destination).
fn refuses_segments(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::EMSGSIZE | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
    )
}

#[cfg(target_os = "linux")]
fn send_some(
    sock: &UdpSocket,
    items: &[(SocketAddr, &[u8])],
    hdrs: &mut Headers,
    gso: bool,
) -> Result<usize, Failed> {
    use std::os::fd::AsRawFd;
    let n = items.len().min(BATCH);
    // Every iovec first: the messages then point into the finished array.
    for (iov, (_, b)) in hdrs.iovs.iter_mut().zip(&items[..n]) {
        *iov = libc::iovec {
            iov_base: b.as_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        };
    }
    // Message m carries items starts[m]..starts[m + 1].
    let mut starts = [0usize; BATCH + 1];
    let mut msgs = 0;
    let mut i = 0;
    while i < n {
        let (dest, bytes) = items[i];
        let mut k = 1;
        if gso && bytes.len() <= GSO_MAX_LEN && !bytes.is_empty() {
            while i + k < n && items[i + k].0 == dest && items[i + k].1.len() == bytes.len() {
                k += 1;
            }
        }
        let namelen = super::udp::std_to_sockaddr(dest, &mut hdrs.names[msgs]);
        hdrs.point(msgs, i, k, namelen, bytes.len());
        starts[msgs] = i;
        msgs += 1;
        i += k;
    }
    starts[msgs] = n;
    // SAFETY: every msghdr points at live buffers of the stated sizes; the
    // kernel only reads the data buffers.
    let sent = unsafe {
        libc::sendmmsg(
            sock.as_raw_fd(),
            hdrs.msgs.as_mut_ptr(),
            msgs as _,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if sent < 0 {
        return Err(Failed {
            first: starts[1] - starts[0],
            error: io::Error::last_os_error(),
        });
    }
    Ok(starts[sent as usize])
}

#[cfg(not(target_os = "linux"))]
fn send_some(
    sock: &UdpSocket,
    items: &[(SocketAddr, &[u8])],
    _hdrs: &mut Headers,
    _gso: bool,
) -> Result<usize, Failed> {
    let (dest, bytes) = items[0];
    sock.send_to(bytes, dest)
        .map(|_| 1)
        .map_err(|error| Failed { first: 1, error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_goes_out_and_comes_back_in_order() {
        let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let to = b.local_addr().unwrap();
        let msgs: Vec<Vec<u8>> = (0..40).map(|i| format!("m{i}").into_bytes()).collect();
        let items: Vec<(SocketAddr, &[u8])> = msgs.iter().map(|m| (to, m.as_slice())).collect();
        assert!(SendBuffers::default().send(&a, &items).is_empty());
        let from = a.local_addr().unwrap();
        let want: Vec<_> = msgs.iter().map(|m| (from, m.clone())).collect();
        assert_eq!(read_all(&b, msgs.len()), want);
    }

    #[test]
    fn reused_headers_carry_only_this_calls_datagrams() {
        // One set of headers for a batch of 40 to one socket, then one of 3
        // to another: the second gets exactly its own, from the right sender.
        let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let c = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut out = SendBuffers::default();
        let long: Vec<Vec<u8>> = (0..40).map(|i| vec![b'l'; 100 + i]).collect();
        let to_b: Vec<(SocketAddr, &[u8])> = long
            .iter()
            .map(|m| (b.local_addr().unwrap(), m.as_slice()))
            .collect();
        assert!(out.send(&a, &to_b).is_empty());
        let short = [b"s1".as_slice(), b"s2", b"s3"];
        let to_c: Vec<(SocketAddr, &[u8])> = short
            .iter()
            .map(|m| (c.local_addr().unwrap(), *m))
            .collect();
        assert!(out.send(&a, &to_c).is_empty());
        let from = a.local_addr().unwrap();
        let want: Vec<_> = short.iter().map(|m| (from, m.to_vec())).collect();
        assert_eq!(read_all(&c, 3), want);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(
            RecvBuffers::default().recv(&c).unwrap(),
            0,
            "nothing more for c"
        );
    }

    /// Reads from `sock` until `want` datagrams came (or a second passed).
    fn read_all(sock: &UdpSocket, want: usize) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut bufs = RecvBuffers::default();
        let mut seen = Vec::new();
        for _ in 0..1000 {
            for i in 0..bufs.recv(sock).unwrap() {
                let (r, bytes) = bufs.get(i);
                assert!(!r.truncated);
                seen.push((r.from, bytes.to_vec()));
            }
            if seen.len() >= want {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        seen
    }

    /// Runs of equal datagrams (sent segmented where the kernel can),
    /// broken by other lengths, another destination and one too long to
    /// segment: `b` gets its datagrams, `c` its own, whole and in order.
    fn mixed_runs(out: &mut SendBuffers, a: &UdpSocket) {
        let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let c = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let (to_b, to_c) = (b.local_addr().unwrap(), c.local_addr().unwrap());
        let mut msgs: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
        for i in 0..45u8 {
            // 12 of 300 bytes, 3 for c, 12 of 500 (one 1 300), 18 of 300.
            let (to, len) = match i {
                0..=11 => (to_b, 300),
                12..=14 => (to_c, 300),
                15..=26 if i == 20 => (to_b, GSO_MAX_LEN + 100),
                15..=26 => (to_b, 500),
                _ => (to_b, 300),
            };
            let mut m = vec![b'a' + i % 26; len];
            m[0] = i;
            msgs.push((to, m));
        }
        let items: Vec<(SocketAddr, &[u8])> =
            msgs.iter().map(|(t, m)| (*t, m.as_slice())).collect();
        assert!(out.send(a, &items).is_empty());
        let from = a.local_addr().unwrap();
        let want = |to: SocketAddr| -> Vec<(SocketAddr, Vec<u8>)> {
            msgs.iter()
                .filter(|(t, _)| *t == to)
                .map(|(_, m)| (from, m.clone()))
                .collect()
        };
        assert_eq!(read_all(&b, 42), want(to_b));
        assert_eq!(read_all(&c, 3), want(to_c));
    }

    #[test]
    fn runs_of_equal_datagrams_arrive_as_the_same_datagrams() {
        let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut out = SendBuffers::default();
        mixed_runs(&mut out, &a);
        // Loopback segments: the runs went segmented, and it stays on.
        #[cfg(target_os = "linux")]
        assert_eq!(out.gso, Some(true));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_kernel_that_refuses_segments_gets_one_datagram_a_message() {
        use std::os::fd::AsRawFd;
        let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        // Without UDP checksums the kernel refuses segmented sends (EINVAL).
        let one: libc::c_int = 1;
        // SAFETY: sets an int option on a socket we own.
        let rc = unsafe {
            libc::setsockopt(
                a.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_NO_CHECK,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as _,
            )
        };
        assert_eq!(rc, 0);
        let mut out = SendBuffers::default();
        mixed_runs(&mut out, &a);
        assert_eq!(out.gso, Some(false), "the refusal turned segmenting off");
        // And the next batch goes datagram by datagram from the start.
        mixed_runs(&mut out, &a);
    }

    #[test]
    fn the_largest_datagram_is_read_whole() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        // The largest IPv4 UDP payload, one byte over what we read whole.
        let big = vec![b'x'; 65_507];
        a.send_to(&big, b.local_addr().unwrap()).unwrap();
        let mut bufs = RecvBuffers::default();
        for _ in 0..1000 {
            if bufs.recv(&b).unwrap() == 1 {
                let (r, bytes) = bufs.get(0);
                assert_eq!(r.len, 65_507);
                assert_eq!(bytes.len(), 65_507);
                assert!(!r.truncated);
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        panic!("nothing received");
    }
}
