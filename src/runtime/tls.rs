//! TLS client side (rustls): one client configuration per set of trust
//! settings, and a non-blocking TLS link over a TCP socket.
//!
//! The link never blocks: it reads and writes TLS records only when the socket
//! is ready, so a handshake runs on the worker's event loop like any other I/O.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use mio::net::TcpStream;
use once_cell::sync::OnceCell;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore};

use crate::core::options::TlsSettings;
use crate::core::uri::Host;
use crate::error::Error;

/// Reads a PEM file of CA certificates; a missing, unreadable or certificate-less
/// file is an error that names the file and the problem.
pub fn load_ca_file(path: &str) -> Result<RootCertStore, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read CA file {path:?}: {e}"))?;
    let mut roots = RootCertStore::empty();
    let mut found = 0usize;
    for cert in CertificateDer::pem_slice_iter(&data) {
        let cert = cert.map_err(|e| format!("CA file {path:?} is not valid PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("CA file {path:?} holds an unusable certificate: {e}"))?;
        found += 1;
    }
    if found == 0 {
        return Err(format!("CA file {path:?} holds no PEM certificate"));
    }
    Ok(roots)
}

/// Checks a CA file for the setter, so a bad path fails the call that set it.
pub fn check_ca_file(path: &str) -> Result<(), Error> {
    load_ca_file(path).map(|_| ()).map_err(Error::invalid)
}

/// The platform's trust store, read once per process.
fn system_roots() -> Result<Arc<RootCertStore>, String> {
    static ROOTS: OnceCell<Arc<RootCertStore>> = OnceCell::new();
    ROOTS
        .get_or_try_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(format!(
                    "no system CA certificates found ({} error(s)); set a CA file",
                    found.errors.len()
                ));
            }
            Ok(Arc::new(roots))
        })
        .cloned()
}

/// The client configuration for `tls` (CA file or system roots, verification
/// on or off), built once and shared by every connection with the same settings.
pub fn client_config(tls: &TlsSettings) -> Result<Arc<ClientConfig>, String> {
    type Key = (Option<String>, bool);
    static CONFIGS: OnceCell<Mutex<HashMap<Key, Arc<ClientConfig>>>> = OnceCell::new();
    let key = (tls.ca_file.clone(), tls.verify);
    let cache = CONFIGS.get_or_init(Default::default);
    if let Some(c) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(c.clone());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let config = if tls.verify {
        let roots = match &tls.ca_file {
            Some(path) => Arc::new(load_ca_file(path)?),
            None => system_roots()?,
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth()
    };
    let config = Arc::new(config);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, config.clone());
    Ok(config)
}

/// The name sent as SNI and checked against the certificate: the configured
/// server name, else the target host (an IP literal is checked against the
/// certificate's IP addresses and sends no SNI).
pub fn server_name(tls: &TlsSettings, host: &Host) -> Result<ServerName<'static>, String> {
    let text = match (&tls.server_name, host) {
        (Some(n), _) => n.clone(),
        (None, Host::V4(a)) => a.to_string(),
        (None, Host::V6(a)) => a.to_string(),
        (None, Host::Domain(d)) => d.clone(),
    };
    ServerName::try_from(text.clone())
        .map_err(|_| format!("{text:?} is not a valid TLS server name"))
}

/// Turns a rustls error into a sentence that says what went wrong.
pub fn describe(e: &rustls::Error) -> String {
    use rustls::{CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(c) => {
            let why = match c {
                C::UnknownIssuer => "it is not signed by a trusted CA (wrong CA file?)".to_owned(),
                C::NotValidForNameContext { expected, .. } => format!(
                    "it is not valid for the server name \"{}\" (wrong host, or set the TLS server name)",
                    expected.to_str()
                ),
                C::NotValidForName => {
                    "it is not valid for the server name (wrong host, or set the TLS server name)"
                        .to_owned()
                }
                C::Expired | C::ExpiredContext { .. } => "it has expired".to_owned(),
                C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet".to_owned(),
                C::Revoked => "it was revoked".to_owned(),
                C::BadSignature => "its signature is bad".to_owned(),
                C::Other(e) => verifier_limit(&e.to_string()),
                other => other.to_string(),
            };
            format!("certificate verify failed: {why}")
        }
        E::InvalidMessage(_) | E::InappropriateMessage { .. } => {
            "the peer does not speak TLS (is this a TLS port?)".to_owned()
        }
        E::AlertReceived(a) => format!("the server ended the handshake: {}", alert_words(*a)),
        other => format!("TLS error: {other}"),
    }
}

/// A TLS alert in words (rustls names them only in debug text).
fn alert_words(a: rustls::AlertDescription) -> String {
    use rustls::AlertDescription as A;
    let words = match a {
        A::HandshakeFailure => "handshake failure (no common cipher or version?)",
        A::BadCertificate => "bad certificate",
        A::UnsupportedCertificate => "unsupported certificate",
        A::CertificateRevoked => "certificate revoked",
        A::CertificateExpired => "certificate expired",
        A::CertificateUnknown => "certificate unknown",
        A::UnknownCA => "unknown CA",
        A::AccessDenied => "access denied",
        A::ProtocolVersion => "protocol version not supported",
        A::InsufficientSecurity => "insufficient security",
        A::InternalError => "internal error",
        A::UnrecognisedName => "unrecognised server name",
        A::CertificateRequired => "a client certificate is required",
        A::NoApplicationProtocol => "no application protocol",
        other => return format!("TLS alert {}", u8::from(other)),
    };
    format!("TLS alert \"{words}\"")
}

/// The words for a verifier error rustls passes on as "other": webpki's
/// limits on chain building, which a hostile server's chain of 100
/// certificates hits, by their webpki names; anything else as it is.
fn verifier_limit(name: &str) -> String {
    match name {
        "MaximumPathDepthExceeded" => {
            "its chain has more intermediate CAs than a client follows (6)".to_owned()
        }
        "MaximumSignatureChecksExceeded" | "MaximumPathBuildCallsExceeded" => {
            "its chain takes more work to check than a client does (too many certificates)"
                .to_owned()
        }
        other => other.to_owned(),
    }
}

/// A TLS session over a non-blocking TCP socket, read and written like a socket.
pub struct TlsLink {
    /// The socket underneath.
    pub tcp: TcpStream,
    conn: ClientConnection,
    /// The server sent something (so a stall is not "no TLS here").
    answered: bool,
}

impl TlsLink {
    /// Starts a client session; the ClientHello goes out once the socket connects.
    pub fn new(
        tcp: TcpStream,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<TlsLink> {
        let conn = ClientConnection::new(config, name)
            .map_err(|e| io::Error::other(format!("TLS setup failed: {e}")))?;
        Ok(TlsLink {
            tcp,
            conn,
            answered: false,
        })
    }

    /// Whether the handshake is still running.
    pub fn handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether the server has sent any TLS bytes yet.
    pub fn answered(&self) -> bool {
        self.answered
    }

    /// Negotiated protocol version, once known (for logs).
    pub fn version(&self) -> Option<&'static str> {
        self.conn.protocol_version().map(|v| match v {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
            _ => "TLS",
        })
    }

    /// Queues a close_notify and writes what the socket takes.
    pub fn close(&mut self) {
        self.conn.send_close_notify();
        let _ = self.push();
    }

    /// Writes queued TLS records until the socket would block.
    fn push(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.tcp) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "connection closed",
                    ))
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Read for TlsLink {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed TCP without close_notify: a close all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            let n = self.conn.read_tls(&mut self.tcp)?;
            self.answered |= n > 0;
            if let Err(e) = self.conn.process_new_packets() {
                // Send our alert before giving up, so the peer logs why.
                let _ = self.push();
                return Err(io::Error::new(io::ErrorKind::InvalidData, describe(&e)));
            }
            // The handshake may have produced records to answer with.
            self.push()?;
            if n == 0 {
                return match self.conn.reader().read(buf) {
                    Ok(n) => Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                    Err(e) => Err(e),
                };
            }
        }
    }
}

impl Write for TlsLink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.conn.writer().write(buf)?;
        self.push()?;
        if n == 0 && !buf.is_empty() {
            // rustls' plaintext buffer is full until the socket drains.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.push()?;
        if self.conn.wants_write() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(())
    }
}

/// `tls_verify=false`: accepts any certificate and name, but still checks that
/// the handshake signatures are made by the key in the presented certificate.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_ca_files_are_named_errors() {
        let e = load_ca_file("/nonexistent/ca.pem").unwrap_err();
        assert!(e.contains("cannot read CA file"), "{e}");
        let dir = std::env::temp_dir().join(format!("sipreg-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = load_ca_file(empty.to_str().unwrap()).unwrap_err();
        assert!(e.contains("no PEM certificate"), "{e}");
        let broken = dir.join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = load_ca_file(broken.to_str().unwrap()).unwrap_err();
        assert!(e.contains("not valid PEM"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn chain_limits_are_said_in_words() {
        use rustls::{CertificateError, OtherError};
        #[derive(Debug)]
        struct Named(&'static str);
        impl std::fmt::Display for Named {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for Named {}
        let other = |name| {
            describe(&rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(Named(name))),
            )))
        };
        assert_eq!(
            other("MaximumPathDepthExceeded"),
            "certificate verify failed: its chain has more intermediate CAs than a client follows (6)"
        );
        assert!(other("MaximumSignatureChecksExceeded").contains("too many certificates"));
        assert_eq!(
            other("SomethingNew"),
            "certificate verify failed: SomethingNew"
        );
    }

    #[test]
    fn server_name_prefers_the_setting_then_the_host() {
        let mut t = TlsSettings::default();
        let ip = server_name(&t, &Host::V4([127, 0, 0, 1].into())).unwrap();
        assert!(matches!(ip, ServerName::IpAddress(_)));
        t.server_name = Some("localhost".into());
        let n = server_name(&t, &Host::V4([127, 0, 0, 1].into())).unwrap();
        assert_eq!(n.to_str(), "localhost");
    }
}
