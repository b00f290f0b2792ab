//! Routing facts a registrar hands out in its 2xx: Service-Route (RFC 3608),
//! Path (RFC 3327), and the public and temporary GRUUs of our contact
//! (RFC 5627). The application uses them for the requests it sends later.

use std::borrow::Cow;

use super::message::{NameAddrRef, Response};

/// What the last successful REGISTER taught about routing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoutingFacts {
    /// Service-Route URIs, in order: the route set for requests we originate.
    pub service_route: Vec<String>,
    /// Path URIs, in order (proxies between us and the registrar).
    pub path: Vec<String>,
    /// `pub-gruu` of our contact.
    pub pub_gruu: Option<String>,
    /// `temp-gruu` of our contact.
    pub temp_gruu: Option<String>,
}

impl RoutingFacts {
    /// No facts (what a registrar that sends none leaves).
    pub const EMPTY: RoutingFacts = RoutingFacts {
        service_route: Vec::new(),
        path: Vec::new(),
        pub_gruu: None,
        temp_gruu: None,
    };

    /// Reads the facts of a 2xx whose contact for us is `ours`.
    pub fn from_response(resp: &Response, ours: Option<&NameAddrRef<'_>>) -> RoutingFacts {
        let gruu = |name: &str| {
            ours.and_then(|c| c.param(name).flatten())
                .filter(|v| !v.is_empty())
                .map(Cow::into_owned)
        };
        RoutingFacts {
            service_route: resp.service_routes(),
            path: resp.paths(),
            pub_gruu: gruu("pub-gruu"),
            temp_gruu: gruu("temp-gruu"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gruus_come_from_our_contact_only() {
        let raw = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\r\n\
Service-Route: <sip:s1.example;lr>\r\nPath: <sip:p1.example;lr>, <sip:p2.example;lr>\r\n\
Contact: <sip:a@1.2.3.4>;expires=60;pub-gruu=\"sip:a@example.com;gr=urn:uuid:1\";temp-gruu=\"sip:tgruu.7@example.com;gr\"\r\n\
Contact: <sip:a@5.6.7.8>;expires=60;pub-gruu=\"sip:other@example.com;gr\"\r\n\
Content-Length: 0\r\n\r\n";
        let resp = Response::parse(raw.as_bytes()).unwrap();
        let contacts = resp.contact_refs().unwrap();
        let f = RoutingFacts::from_response(&resp, contacts.first());
        assert_eq!(f.service_route, ["sip:s1.example;lr"]);
        assert_eq!(f.path, ["sip:p1.example;lr", "sip:p2.example;lr"]);
        assert_eq!(
            f.pub_gruu.as_deref(),
            Some("sip:a@example.com;gr=urn:uuid:1")
        );
        assert_eq!(f.temp_gruu.as_deref(), Some("sip:tgruu.7@example.com;gr"));
        let none = RoutingFacts::from_response(&resp, None);
        assert_eq!(none.pub_gruu, None);
    }
}
