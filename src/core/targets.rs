//! RFC 3263 target selection, sans-IO: DNS answers come in as plain data, an
//! ordered list of (transport, address) targets comes out, with a cursor for
//! failover (RFC 3263 section 4.3) and an expiry taken from the answers' TTLs.
//!
//! The runtime does the lookups (NAPTR, then SRV, then A/AAAA) and calls the
//! ordering functions here at each step; the registerer owns the resulting
//! [`TargetList`] and asks it for the next target when a request fails.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::options::{Settings, Transport};
use super::rand::Rng;
use super::uri::Host;

/// One NAPTR record (RFC 3403), as data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Naptr {
    /// Lower is tried first.
    pub order: u16,
    /// Tie-break within one order, lower first.
    pub preference: u16,
    /// Flags; RFC 3263 uses `S` (the replacement is an SRV name).
    pub flags: String,
    /// Service, e.g. `SIP+D2U`.
    pub service: String,
    /// The SRV name to look up next.
    pub replacement: String,
}

/// One SRV record (RFC 2782), as data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Srv {
    /// Lower is tried first.
    pub priority: u16,
    /// Relative weight among records of one priority.
    pub weight: u16,
    /// Port on the target.
    pub port: u16,
    /// Host name of the target (`.` means "service not available here").
    pub target: String,
}

/// One place a request can go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Transport to use there.
    pub transport: Transport,
    /// Address and port.
    pub addr: SocketAddr,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.transport.as_str(), self.addr)
    }
}

/// What the runtime must look up for a registerer whose target is a host name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// The host name (registrar or outbound proxy).
    pub name: String,
    /// Explicit port: no NAPTR/SRV, only A/AAAA (RFC 3263 section 4.2).
    pub port: Option<u16>,
    /// The transport the user chose (`None`: NAPTR order decides among
    /// udp, tcp and tls).
    pub transport: Option<Transport>,
    /// Prefer IPv6 addresses first (the family that worked last).
    pub prefer_v6: bool,
}

impl Query {
    /// The query for `settings`, or `None` when the target is an IP literal
    /// (which needs no lookup).
    pub fn for_settings(settings: &Settings) -> Option<Query> {
        let Host::Domain(name) = &settings.target_host else {
            return None;
        };
        Some(Query {
            name: name.clone(),
            port: settings.target_port_given.then_some(settings.target_port),
            transport: (!settings.transport_open).then_some(settings.transport),
            prefer_v6: false,
        })
    }

    /// The port used when no SRV record gives one.
    pub fn default_port(&self) -> u16 {
        self.port.unwrap_or(default_port(self.fallback_transport()))
    }

    /// The transport for targets found without NAPTR/SRV (RFC 3263 4.1: UDP
    /// when nothing chose one).
    pub fn fallback_transport(&self) -> Transport {
        self.transport.unwrap_or(Transport::Udp)
    }

    /// The SRV names to try when there is no usable NAPTR: the chosen
    /// transport's, or UDP then TCP when the choice is open.
    pub fn srv_names(&self) -> Vec<(Transport, String)> {
        match self.transport {
            Some(t) => vec![(t, srv_name(t, &self.name))],
            None => [Transport::Udp, Transport::Tcp]
                .into_iter()
                .map(|t| (t, srv_name(t, &self.name)))
                .collect(),
        }
    }
}

/// Default port of a transport (RFC 3263; 80/443 for WebSocket).
pub fn default_port(t: Transport) -> u16 {
    t.default_port()
}

/// The NAPTR service field for a transport (RFC 3263 section 4.1; RFC 7118
/// section 6 for WebSocket).
pub fn naptr_service(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "SIP+D2U",
        Transport::Tcp => "SIP+D2T",
        Transport::Tls => "SIPS+D2T",
        Transport::Ws => "SIP+D2W",
        Transport::Wss => "SIPS+D2W",
    }
}

/// The SRV name for a transport when there is no NAPTR (RFC 3263 section 4.1).
pub fn srv_name(t: Transport, domain: &str) -> String {
    let prefix = match t {
        Transport::Udp => "_sip._udp",
        Transport::Tcp => "_sip._tcp",
        Transport::Tls => "_sips._tcp",
        Transport::Ws => "_sip._ws",
        Transport::Wss => "_sips._ws",
    };
    format!("{prefix}.{}", domain.trim_end_matches('.'))
}

fn service_transport(service: &str) -> Option<Transport> {
    Transport::ALL
        .into_iter()
        .find(|t| naptr_service(*t).eq_ignore_ascii_case(service))
}

/// The SRV names to query, in order, from a NAPTR set: records with the `S`
/// flag and a SIP service we support, sorted by order then preference;
/// `want` keeps only that transport's service (`None`: udp, tcp and tls in
/// NAPTR order; WebSocket only when chosen, as it needs a path).
pub fn choose_naptr(records: &[Naptr], want: Option<Transport>) -> Vec<(Transport, String)> {
    let mut usable: Vec<(&Naptr, Transport)> = records
        .iter()
        .filter(|n| n.flags.eq_ignore_ascii_case("s"))
        .filter_map(|n| service_transport(&n.service).map(|t| (n, t)))
        .filter(|(_, t)| want.map_or(!t.websocket(), |w| w == *t))
        .collect();
    usable.sort_by_key(|(n, _)| (n.order, n.preference));
    let mut out: Vec<(Transport, String)> = Vec::new();
    for (n, t) in usable {
        let name = n.replacement.trim_end_matches('.').to_owned();
        if !name.is_empty() && !out.iter().any(|(ot, on)| *ot == t && *on == name) {
            out.push((t, name));
        }
    }
    out
}

/// Orders SRV records: ascending priority; within one priority, RFC 2782's
/// weighted random selection (zero weights first in the list, a running sum,
/// a uniform pick in `0..=sum`). A lone `.` target means "no service": empty.
pub fn order_srv(records: &[Srv], rng: &mut Rng) -> Vec<Srv> {
    let mut recs: Vec<Srv> = records
        .iter()
        .filter(|s| !s.target.trim_end_matches('.').is_empty())
        .cloned()
        .collect();
    recs.sort_by_key(|s| s.priority);
    let mut out = Vec::with_capacity(recs.len());
    let mut i = 0;
    while i < recs.len() {
        let prio = recs[i].priority;
        let end = recs[i..]
            .iter()
            .position(|s| s.priority != prio)
            .map_or(recs.len(), |p| i + p);
        // Zero-weight records first, so they are picked only when the dice say 0.
        let mut group: Vec<Srv> = recs[i..end].to_vec();
        group.sort_by_key(|s| s.weight != 0);
        while !group.is_empty() {
            let total: u64 = group.iter().map(|s| u64::from(s.weight)).sum();
            let pick = rng.next_u64() % (total + 1);
            let mut running = 0u64;
            let idx = group
                .iter()
                .position(|s| {
                    running += u64::from(s.weight);
                    running >= pick
                })
                .unwrap_or(0);
            out.push(group.remove(idx));
        }
        i = end;
    }
    out
}

/// Addresses of one host in the order to try: both families, alternating,
/// starting with the preferred one (happy-eyeballs style: a family that fails
/// costs one failover, not the whole host).
pub fn order_addresses(v4: &[IpAddr], v6: &[IpAddr], prefer_v6: bool) -> Vec<IpAddr> {
    let (first, second) = if prefer_v6 { (v6, v4) } else { (v4, v6) };
    let mut out = Vec::with_capacity(v4.len() + v6.len());
    for i in 0..first.len().max(second.len()) {
        out.extend(first.get(i));
        out.extend(second.get(i));
    }
    out
}

/// The ordered targets of one resolution and the failover cursor.
#[derive(Clone, Debug, Default)]
pub struct TargetList {
    targets: Vec<Target>,
    cursor: usize,
    /// Failures in the current round (since the last success or the start of the request).
    failed: usize,
    /// When the answers run out (`None`: never, e.g. an IP literal).
    expires_at: Option<Instant>,
    /// The target that last succeeded: kept across re-resolutions while listed.
    sticky: Option<Target>,
    /// Set on an empty list: it needs resolving before first use.
    unresolved: bool,
}

impl TargetList {
    /// A list that must be resolved before first use.
    pub fn unresolved() -> TargetList {
        TargetList {
            unresolved: true,
            ..TargetList::default()
        }
    }

    /// A resolved list valid until `expires_at` (`None`: forever).
    pub fn new(targets: Vec<Target>, expires_at: Option<Instant>) -> TargetList {
        TargetList {
            targets,
            expires_at,
            ..TargetList::default()
        }
    }

    /// The targets, in order.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// Where requests go now.
    pub fn current(&self) -> Option<&Target> {
        self.targets.get(self.cursor)
    }

    /// Whether the list must be (re-)resolved before the next request.
    pub fn needs_resolution(&self, now: Instant) -> bool {
        self.unresolved || self.targets.is_empty() || self.expires_at.is_some_and(|t| now >= t)
    }

    /// Whether IPv6 worked last (so the next resolution tries it first).
    pub fn prefers_v6(&self) -> bool {
        self.sticky.as_ref().is_some_and(|t| t.addr.is_ipv6())
    }

    /// A new request starts: it may try every target once.
    pub fn begin_round(&mut self) {
        self.failed = 0;
    }

    /// The current target failed: moves to the next one and returns it, or
    /// `None` once every target failed in this round (the cursor then goes
    /// back to the first target, for the backoff retry).
    pub fn fail_current(&mut self) -> Option<&Target> {
        if self.targets.is_empty() {
            return None;
        }
        self.failed += 1;
        self.sticky = None;
        if self.failed >= self.targets.len() {
            self.cursor = 0;
            self.failed = 0;
            return None;
        }
        self.cursor = (self.cursor + 1) % self.targets.len();
        self.current()
    }

    /// The current target answered: stay on it until it fails.
    pub fn succeeded(&mut self) {
        self.failed = 0;
        self.sticky = self.current().cloned();
    }

    /// Takes a fresh resolution. The target in use stays selected if the new
    /// answers still list it; otherwise the new first target is used.
    pub fn replace(&mut self, new: TargetList) {
        let keep = self
            .sticky
            .clone()
            .and_then(|s| new.targets.iter().position(|t| *t == s));
        let sticky = keep.and(self.sticky.take());
        *self = TargetList {
            cursor: keep.unwrap_or(0),
            sticky,
            ..new
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn srv(priority: u16, weight: u16, port: u16, target: &str) -> Srv {
        Srv {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    fn naptr(order: u16, preference: u16, service: &str, replacement: &str) -> Naptr {
        Naptr {
            order,
            preference,
            flags: "S".into(),
            service: service.into(),
            replacement: replacement.into(),
        }
    }

    fn t(port: u16) -> Target {
        Target {
            transport: Transport::Udp,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    #[test]
    fn naptr_filters_by_transport_and_sorts_by_order_then_preference() {
        let recs = vec![
            naptr(20, 10, "SIP+D2T", "_sip._tcp.example.test."),
            naptr(10, 20, "SIP+D2U", "_sip._udp.b.example.test."),
            naptr(10, 10, "SIP+D2U", "_sip._udp.a.example.test."),
            naptr(5, 10, "SIPS+D2T", "_sips._tcp.example.test."),
            naptr(1, 1, "E2U+sip", "ignored.example.test."),
            naptr(2, 1, "SIP+D2W", "_sip._ws.example.test."),
            Naptr {
                flags: "U".into(),
                ..naptr(1, 1, "SIP+D2U", "ignored-u.example.test.")
            },
        ];
        assert_eq!(
            choose_naptr(&recs, Some(Transport::Udp)),
            vec![
                (Transport::Udp, "_sip._udp.a.example.test".to_owned()),
                (Transport::Udp, "_sip._udp.b.example.test".to_owned()),
            ]
        );
        assert_eq!(
            choose_naptr(&recs, Some(Transport::Tcp)),
            vec![(Transport::Tcp, "_sip._tcp.example.test".to_owned())]
        );
        let open = choose_naptr(&recs, None);
        let order: Vec<Transport> = open.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            order,
            vec![
                Transport::Tls,
                Transport::Udp,
                Transport::Udp,
                Transport::Tcp
            ]
        );
        assert!(choose_naptr(&[], Some(Transport::Udp)).is_empty());
    }

    #[test]
    fn srv_names_without_naptr() {
        assert_eq!(
            srv_name(Transport::Udp, "example.test"),
            "_sip._udp.example.test"
        );
        assert_eq!(
            srv_name(Transport::Tcp, "example.test."),
            "_sip._tcp.example.test"
        );
        assert_eq!(
            srv_name(Transport::Tls, "example.test"),
            "_sips._tcp.example.test"
        );
    }

    #[test]
    fn srv_priority_comes_first_whatever_the_weights() {
        let recs = vec![
            srv(20, 1000, 5072, "sip2"),
            srv(10, 1, 5071, "sip1"),
            srv(30, 0, 5073, "sip3"),
        ];
        for seed in 0..50 {
            let ports: Vec<u16> = order_srv(&recs, &mut Rng::new(seed))
                .iter()
                .map(|s| s.port)
                .collect();
            assert_eq!(ports, vec![5071, 5072, 5073]);
        }
    }

    #[test]
    fn srv_dot_target_means_no_service() {
        assert!(order_srv(&[srv(0, 0, 0, ".")], &mut Rng::new(1)).is_empty());
    }

    #[test]
    fn srv_weights_80_20_over_200_selections_within_bounds() {
        let recs = vec![srv(10, 80, 5071, "sip1"), srv(10, 20, 5072, "sip2")];
        let mut rng = Rng::new(0x5eed);
        let first_is_heavy = (0..200)
            .filter(|_| order_srv(&recs, &mut rng)[0].port == 5071)
            .count();
        // P(first = weight 80) = 81/101 with the 0..=sum pick; n = 200 gives
        // mean 160.4 and sd 5.6: 4 sd each side is [138, 183].
        assert!(
            (138..=183).contains(&first_is_heavy),
            "weight-80 record first in {first_is_heavy} of 200"
        );
        // Every selection is a permutation of both records.
        let all = order_srv(&recs, &mut rng);
        assert_eq!(all.len(), 2);
        assert_ne!(all[0].port, all[1].port);
    }

    #[test]
    fn srv_weights_hold_for_many_seeds() {
        // Not one lucky seed: the bound holds for the first 20 seeds.
        let recs = vec![srv(10, 80, 5071, "sip1"), srv(10, 20, 5072, "sip2")];
        for seed in 0..20 {
            let mut rng = Rng::new(seed);
            let heavy = (0..200)
                .filter(|_| order_srv(&recs, &mut rng)[0].port == 5071)
                .count();
            assert!((138..=183).contains(&heavy), "seed {seed}: {heavy}");
        }
    }

    #[test]
    fn zero_weight_is_rarely_first_but_never_lost() {
        let recs = vec![srv(10, 0, 5071, "zero"), srv(10, 100, 5072, "heavy")];
        let mut rng = Rng::new(9);
        let zero_first = (0..1000)
            .filter(|_| order_srv(&recs, &mut rng)[0].port == 5071)
            .count();
        // Picked first only when the dice give exactly 0 (1 in 101).
        assert!(zero_first < 40, "{zero_first}");
        assert_eq!(order_srv(&recs, &mut rng).len(), 2);
    }

    #[test]
    fn addresses_alternate_families_from_the_preferred_one() {
        let v4: Vec<IpAddr> = vec![[127, 0, 0, 1].into(), [127, 0, 0, 2].into()];
        let v6: Vec<IpAddr> = vec!["::1".parse().unwrap()];
        let s = |v: Vec<IpAddr>| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert_eq!(
            s(order_addresses(&v4, &v6, false)),
            ["127.0.0.1", "::1", "127.0.0.2"]
        );
        assert_eq!(
            s(order_addresses(&v4, &v6, true)),
            ["::1", "127.0.0.1", "127.0.0.2"]
        );
        assert_eq!(s(order_addresses(&[], &v6, false)), ["::1"]);
    }

    #[test]
    fn failover_walks_the_list_once_then_restarts_from_the_first() {
        let mut l = TargetList::new(vec![t(1), t(2), t(3)], None);
        l.begin_round();
        assert_eq!(l.current(), Some(&t(1)));
        assert_eq!(l.fail_current(), Some(&t(2)));
        assert_eq!(l.fail_current(), Some(&t(3)));
        assert_eq!(l.fail_current(), None, "all three failed");
        assert_eq!(l.current(), Some(&t(1)), "the backoff retry starts over");
        l.begin_round();
        assert_eq!(l.fail_current(), Some(&t(2)));
    }

    #[test]
    fn stays_on_a_working_target_and_returns_to_the_first_only_after_it_fails() {
        let mut l = TargetList::new(vec![t(1), t(2)], None);
        l.begin_round();
        assert_eq!(l.fail_current(), Some(&t(2)));
        l.succeeded();
        // Later requests (refreshes) stay on target 2.
        for _ in 0..3 {
            l.begin_round();
            assert_eq!(l.current(), Some(&t(2)));
            l.succeeded();
        }
        // Target 2 fails: the next one is target 1 (wrapping), in the same request.
        l.begin_round();
        assert_eq!(l.fail_current(), Some(&t(1)));
        // And 1 failing too ends the round.
        assert_eq!(l.fail_current(), None);
    }

    #[test]
    fn expiry_asks_for_a_new_resolution_which_keeps_the_working_target() {
        let now = Instant::now();
        let mut l = TargetList::unresolved();
        assert!(l.needs_resolution(now));
        l.replace(TargetList::new(
            vec![t(1), t(2)],
            Some(now + Duration::from_secs(30)),
        ));
        assert!(!l.needs_resolution(now + Duration::from_secs(29)));
        assert!(l.needs_resolution(now + Duration::from_secs(30)));
        l.begin_round();
        l.fail_current();
        l.succeeded();
        assert_eq!(l.current(), Some(&t(2)));
        // Same answers again: still on 2.
        l.replace(TargetList::new(vec![t(1), t(2)], None));
        assert_eq!(l.current(), Some(&t(2)));
        // The record changed: 2 is gone, the new first target is used.
        l.replace(TargetList::new(vec![t(3), t(1)], None));
        assert_eq!(l.current(), Some(&t(3)));
        // A list that never expires (IP literal) never needs resolution.
        assert!(!l.needs_resolution(now + Duration::from_secs(1 << 20)));
    }

    #[test]
    fn ipv6_preference_follows_the_working_family() {
        let v6 = Target {
            transport: Transport::Udp,
            addr: "[::1]:5060".parse().unwrap(),
        };
        let mut l = TargetList::new(vec![t(1), v6], None);
        assert!(!l.prefers_v6());
        l.begin_round();
        l.fail_current();
        l.succeeded();
        assert!(l.prefers_v6());
    }
}
