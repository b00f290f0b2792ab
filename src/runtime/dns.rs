//! The resolver thread: RFC 3263 lookups (NAPTR → SRV → A/AAAA) off the
//! worker's event loop, with hickory-resolver reading `/etc/resolv.conf`.
//!
//! The worker queues a [`Request`]; the answer comes back as
//! `Command::Resolved` through the worker's command channel and waker. The
//! thread runs a single-threaded tokio runtime (hickory is async) and one task
//! per request, so a slow name does not hold up the others. Ordering (NAPTR
//! order/preference, SRV priority and weights, address families) is done by
//! the sans-IO [`crate::core::targets`] functions.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use once_cell::sync::OnceCell;

use super::log::Level;
use super::{Command, RegId};
use crate::core::options::Transport;
use crate::core::rand::{os_seed, Rng};
use crate::core::targets::{
    choose_naptr, order_addresses, order_srv, Naptr, Query, Srv, Target, TargetList,
};
use crate::log_at;

/// One resolution for one registerer.
pub struct Request {
    /// Who asked.
    pub reg: RegId,
    /// What to look up.
    pub query: Query,
}

/// Per-query timeout and attempts: a dead DNS server costs a few seconds, not minutes.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
const QUERY_ATTEMPTS: usize = 2;

/// What the resolver thread is asked to do.
enum Job {
    Lookup(Request),
    /// Read `/etc/resolv.conf` again and drop every cached answer.
    Reload,
}

static QUEUE: OnceCell<tokio::sync::mpsc::UnboundedSender<Job>> = OnceCell::new();

/// Queues a lookup; the answer arrives later as `Command::Resolved`.
pub fn request(req: Request) {
    // Started on first use; a failed start is tried again by the next request.
    let queue = match QUEUE.get_or_try_init(start) {
        Ok(q) => q,
        Err(e) => return answer(req.reg, Err(e)),
    };
    if let Err(e) = queue.send(Job::Lookup(req)) {
        if let Job::Lookup(req) = e.0 {
            answer(req.reg, Err("the resolver thread is gone".into()));
        }
    }
}

/// The network changed: the name servers may be others now (a new Wi-Fi, a
/// VPN), so later lookups read `/etc/resolv.conf` again and start with an
/// empty cache. Lookups already running finish with the old settings.
pub fn reload() {
    // Nothing to do before the first lookup: that one reads the file anyway.
    if let Some(queue) = QUEUE.get() {
        let _ = queue.send(Job::Reload);
    }
}

fn answer(reg: RegId, result: Result<TargetList, String>) {
    let result = result.map_err(|why| super::cause::dns(&why));
    let result = Box::new(result);
    if super::send(Command::Resolved { id: reg, result }).is_err() {
        log_at!(Level::Error, "dns: cannot hand an answer to the worker");
    }
}

fn start() -> Result<tokio::sync::mpsc::UnboundedSender<Job>, String> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the resolver runtime: {e}"))?;
    std::thread::Builder::new()
        .name("sipreg-dns".into())
        .spawn(move || {
            rt.block_on(async move {
                let mut resolver = build_resolver();
                let seed = os_seed();
                let mut n = 0u64;
                while let Some(job) = rx.recv().await {
                    let req = match job {
                        Job::Lookup(req) => req,
                        Job::Reload => {
                            resolver = build_resolver();
                            log_at!(Level::Debug, "dns: resolver settings read again");
                            continue;
                        }
                    };
                    // A resolv.conf that could not be read is tried again.
                    if resolver.is_err() {
                        resolver = build_resolver();
                    }
                    n = n.wrapping_add(1);
                    let resolver = resolver.clone();
                    let mut rng = Rng::new(seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
                    tokio::spawn(async move {
                        let result = match &resolver {
                            Ok(r) => resolve(r, &req.query, &mut rng).await,
                            Err(e) => Err(e.clone()),
                        };
                        match &result {
                            Ok(l) => log_at!(
                                Level::Debug,
                                "dns: {} -> {} target(s)",
                                req.query.name,
                                l.targets().len()
                            ),
                            Err(e) => {
                                log_at!(Level::Info, "dns: cannot resolve {}: {e}", req.query.name)
                            }
                        }
                        answer(req.reg, result);
                    });
                }
            })
        })
        .map_err(|e| format!("cannot start the resolver thread: {e}"))?;
    Ok(tx)
}

fn build_resolver() -> Result<TokioResolver, String> {
    let mut b =
        TokioResolver::builder_tokio().map_err(|e| format!("cannot read /etc/resolv.conf: {e}"))?;
    let o = b.options_mut();
    o.timeout = QUERY_TIMEOUT;
    o.attempts = QUERY_ATTEMPTS;
    b.build()
        .map_err(|e| format!("cannot build the resolver: {e}"))
}

/// Why a lookup gave nothing, in DNS words (NXDOMAIN, SERVFAIL, timeout, …).
fn describe(e: &NetError) -> String {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(nr)) => match nr.response_code {
            ResponseCode::NXDomain => "NXDOMAIN".into(),
            ResponseCode::NoError => "no records (NODATA)".into(),
            code => code.to_str().to_owned(),
        },
        NetError::Dns(DnsError::ResponseCode(code)) => code.to_str().to_owned(),
        NetError::Timeout => "timed out".into(),
        other => other.to_string(),
    }
}

/// Whether the name (or that record type) does not exist, which RFC 3263
/// answers by going to the next step; anything else (timeout, SERVFAIL,
/// REFUSED) is a failure of the whole resolution.
fn absent(e: &NetError) -> bool {
    matches!(
        e,
        NetError::Dns(DnsError::NoRecordsFound(nr))
            if matches!(nr.response_code, ResponseCode::NXDomain | ResponseCode::NoError)
    )
}

/// Why a lookup gave no records.
struct Failure {
    /// `TYPE name: reason`.
    text: String,
    /// NXDOMAIN / NODATA (see [`absent`]).
    absent: bool,
}

/// Records of one type, their expiry, or why there are none.
async fn lookup(
    r: &TokioResolver,
    name: &str,
    rtype: RecordType,
) -> Result<(Vec<RData>, Instant), Failure> {
    let l = r.lookup(name, rtype).await.map_err(|e| Failure {
        text: format!("{rtype} {name}: {}", describe(&e)),
        absent: absent(&e),
    })?;
    let data: Vec<RData> = l.answers().iter().map(|rec| rec.data.clone()).collect();
    Ok((data, l.valid_until()))
}

/// A and AAAA of `host`, ordered by [`order_addresses`]; the error names the
/// host and why when neither family has an address.
async fn addresses(
    r: &TokioResolver,
    host: &str,
    prefer_v6: bool,
    expiry: &mut Option<Instant>,
) -> Result<Vec<IpAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let (a, aaaa) = tokio::join!(
        lookup(r, host, RecordType::A),
        lookup(r, host, RecordType::AAAA)
    );
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for (data, until) in [&a, &aaaa].into_iter().flatten() {
        earliest(expiry, *until);
        for d in data {
            match d {
                RData::A(a) => v4.push(IpAddr::V4(a.0)),
                RData::AAAA(a) => v6.push(IpAddr::V6(a.0)),
                _ => {}
            }
        }
    }
    if v4.is_empty() && v6.is_empty() {
        return Err(match (a, aaaa) {
            (Err(e), _) => e.text,
            (_, Err(e)) => e.text,
            _ => format!("{host} has no A/AAAA records"),
        });
    }
    Ok(order_addresses(&v4, &v6, prefer_v6))
}

fn earliest(expiry: &mut Option<Instant>, t: Instant) {
    *expiry = Some(expiry.map_or(t, |e| e.min(t)));
}

/// RFC 3263 section 4: the ordered targets for `q`.
async fn resolve(r: &TokioResolver, q: &Query, rng: &mut Rng) -> Result<TargetList, String> {
    let name = q.name.trim_end_matches('.');
    let mut expiry = None;
    let mut targets: Vec<Target> = Vec::new();
    let push = |targets: &mut Vec<Target>, transport: Transport, ips: Vec<IpAddr>, port: u16| {
        for ip in ips {
            let t = Target {
                transport,
                addr: SocketAddr::new(ip, port),
            };
            if !targets.contains(&t) {
                targets.push(t);
            }
        }
    };
    // A port (or a name that is local by definition) skips NAPTR and SRV (RFC 3263 4.2, RFC 6761).
    let local =
        name.eq_ignore_ascii_case("localhost") || name.to_ascii_lowercase().ends_with(".localhost");
    if q.port.is_some() || local {
        let ips = addresses(r, name, q.prefer_v6, &mut expiry).await?;
        push(&mut targets, q.fallback_transport(), ips, q.default_port());
        return Ok(TargetList::new(targets, expiry));
    }
    // NAPTR, filtered by the transport the user chose.
    let mut services = Vec::new();
    let naptr = lookup(r, name, RecordType::NAPTR).await;
    if let Err(f) = &naptr {
        if !f.absent {
            // The DNS server is not answering properly: no point in more queries.
            return Err(f.text.clone());
        }
    }
    if let Ok((data, until)) = naptr {
        let recs: Vec<Naptr> = data
            .iter()
            .filter_map(|d| match d {
                RData::NAPTR(n) => Some(Naptr {
                    order: n.order,
                    preference: n.preference,
                    flags: String::from_utf8_lossy(&n.flags).into_owned(),
                    service: String::from_utf8_lossy(&n.services).into_owned(),
                    replacement: n.replacement.to_string(),
                }),
                _ => None,
            })
            .collect();
        services = choose_naptr(&recs, q.transport);
        if !services.is_empty() {
            earliest(&mut expiry, until);
        }
    }
    if services.is_empty() {
        services = q.srv_names();
    }
    // SRV: priority, then RFC 2782 weights.
    let mut last_error = None;
    for (transport, srv) in &services {
        let recs: Vec<Srv> = match lookup(r, srv, RecordType::SRV).await {
            Ok((data, until)) => {
                earliest(&mut expiry, until);
                data.iter()
                    .filter_map(|d| match d {
                        RData::SRV(s) => Some(Srv {
                            priority: s.priority,
                            weight: s.weight,
                            port: s.port,
                            target: s.target.to_string(),
                        }),
                        _ => None,
                    })
                    .collect()
            }
            Err(f) if f.absent => {
                last_error = Some(f.text);
                continue;
            }
            Err(f) => return Err(f.text),
        };
        for s in order_srv(&recs, rng) {
            let host = s.target.trim_end_matches('.').to_owned();
            match addresses(r, &host, q.prefer_v6, &mut expiry).await {
                Ok(ips) => push(&mut targets, *transport, ips, s.port),
                Err(e) => last_error = Some(e),
            }
        }
    }
    if !targets.is_empty() {
        return Ok(TargetList::new(targets, expiry));
    }
    // No usable SRV: A/AAAA of the name itself on the default port (RFC 3263 4.2).
    match addresses(r, name, q.prefer_v6, &mut expiry).await {
        Ok(ips) => {
            push(&mut targets, q.fallback_transport(), ips, q.default_port());
            Ok(TargetList::new(targets, expiry))
        }
        Err(e) => {
            if let Some(srv) = last_error {
                log_at!(Level::Debug, "dns: {srv}");
            }
            Err(e)
        }
    }
}
