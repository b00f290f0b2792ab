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

    /// Points message `i` at its address slot and at `iov` alone, with no
    /// control data: every field the kernel reads, set for this call.
    fn set(&mut self, i: usize, iov: libc::iovec, namelen: libc::socklen_t) {
        self.iovs[i] = iov;
        let m = &mut self.msgs[i];
        m.msg_len = 0;
        m.msg_hdr.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
        m.msg_hdr.msg_namelen = namelen;
        m.msg_hdr.msg_iov = &mut self.iovs[i];
        m.msg_hdr.msg_iovlen = 1;
        m.msg_hdr.msg_control = std::ptr::null_mut();
        m.msg_hdr.msg_controllen = 0;
        m.msg_hdr.msg_flags = 0;
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
}

impl Default for SendBuffers {
    fn default() -> Self {
        SendBuffers {
            hdrs: Headers::new(),
        }
    }
}

impl SendBuffers {
    /// Sends `items` (destination, bytes) on `sock`, as few calls as possible.
    /// Returns, per item that failed, its index and the error; a full socket
    /// buffer is not a failure (the datagram is lost and Timer E resends it).
    pub fn send(
        &mut self,
        sock: &UdpSocket,
        items: &[(SocketAddr, &[u8])],
    ) -> Vec<(usize, io::Error)> {
        send(sock, items, &mut self.hdrs)
    }
}

fn send(
    sock: &UdpSocket,
    items: &[(SocketAddr, &[u8])],
    hdrs: &mut Headers,
) -> Vec<(usize, io::Error)> {
    let mut failed = Vec::new();
    let mut done = 0;
    let mut retried = false;
    while done < items.len() {
        let end = (done + BATCH).min(items.len());
        match send_some(sock, &items[done..end], hdrs) {
            // An earlier datagram's ICMP error, reported on this send: once more.
            Err(e) if !retried && super::udp::is_icmp_report(&e) => {
                retried = true;
                continue;
            }
            Ok(0) => {
                // Nothing went (a full buffer): these datagrams are lost.
                done = end;
            }
            Ok(n) => {
                done += n;
                retried = false;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => done = end,
            Err(e) => {
                // The first datagram of the batch failed: report it, go on after it.
                failed.push((done, e));
                done += 1;
                retried = false;
            }
        }
    }
    failed
}

#[cfg(target_os = "linux")]
fn send_some(
    sock: &UdpSocket,
    items: &[(SocketAddr, &[u8])],
    hdrs: &mut Headers,
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let n = items.len().min(BATCH);
    for (i, (dest, bytes)) in items.iter().take(n).enumerate() {
        let len = super::udp::std_to_sockaddr(*dest, &mut hdrs.names[i]);
        let iov = libc::iovec {
            iov_base: bytes.as_ptr() as *mut libc::c_void,
            iov_len: bytes.len(),
        };
        hdrs.set(i, iov, len);
    }
    // SAFETY: every msghdr points at live buffers of the stated sizes; the
    // kernel only reads the data buffers.
    let sent = unsafe {
        libc::sendmmsg(
            sock.as_raw_fd(),
            hdrs.msgs.as_mut_ptr(),
            n as _,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sent as usize)
}

#[cfg(not(target_os = "linux"))]
fn send_some(
    sock: &UdpSocket,
    items: &[(SocketAddr, &[u8])],
    _hdrs: &mut Headers,
) -> io::Result<usize> {
    let (dest, bytes) = items[0];
    sock.send_to(bytes, dest).map(|_| 1)
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
        let mut bufs = RecvBuffers::default();
        let mut seen = Vec::new();
        for _ in 0..1000 {
            let n = bufs.recv(&b).unwrap();
            for i in 0..n {
                let (r, bytes) = bufs.get(i);
                assert_eq!(r.from, a.local_addr().unwrap());
                assert!(!r.truncated);
                seen.push(bytes.to_vec());
            }
            if seen.len() == msgs.len() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(seen, msgs);
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
        let mut bufs = RecvBuffers::default();
        let mut seen = Vec::new();
        for _ in 0..1000 {
            for i in 0..bufs.recv(&c).unwrap() {
                let (r, bytes) = bufs.get(i);
                assert_eq!(r.from, a.local_addr().unwrap());
                seen.push(bytes.to_vec());
            }
            if seen.len() >= 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(bufs.recv(&c).unwrap(), 0, "nothing more for c");
        assert_eq!(seen, short.map(<[u8]>::to_vec));
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
