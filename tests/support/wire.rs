//! Reads the requests we generate. rsip is used here, and only here, as an
//! independent oracle: every request must parse with it.

/// One request as seen by a test registrar.
#[derive(Clone, Debug)]
pub struct Request {
    pub raw: String,
    pub request_line: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// Parses `bytes`, asserting that rsip accepts the message too.
    pub fn parse(bytes: &[u8]) -> Request {
        let raw = String::from_utf8(bytes.to_vec()).expect("requests are UTF-8");
        let oracle = rsip::SipMessage::try_from(raw.as_str());
        assert!(
            oracle.is_ok(),
            "rsip rejects our request: {oracle:?}\n{raw}"
        );
        assert!(
            raw.ends_with("\r\n\r\n"),
            "request must end with an empty line"
        );
        let req = Request::read(&raw);
        assert_eq!(
            req.headers.len(),
            raw.split("\r\n")
                .skip(1)
                .take_while(|l| !l.is_empty())
                .count(),
            "every header line has a colon and ends with CRLF:\n{raw}"
        );
        req
    }

    /// Reads a message from text without the oracle checks: a log's copy
    /// (SIPp's message log) or a response, with CRLF or LF line ends.
    pub fn read(text: &str) -> Request {
        let mut lines = text.lines();
        let request_line = lines.next().unwrap_or_default().to_owned();
        let headers = lines
            .take_while(|l| !l.trim().is_empty())
            .filter_map(|l| {
                let (n, v) = l.split_once(':')?;
                Some((n.trim().to_owned(), v.trim().to_owned()))
            })
            .collect();
        Request {
            raw: text.to_owned(),
            request_line,
            headers,
        }
    }

    /// First value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All values of a header.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// CSeq number.
    pub fn cseq(&self) -> u32 {
        self.header("CSeq")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Via branch.
    pub fn branch(&self) -> String {
        let via = self.header("Via").unwrap();
        via.split(';')
            .find_map(|p| p.trim().strip_prefix("branch="))
            .unwrap()
            .to_owned()
    }

    /// The URI inside `<...>` of the first Contact.
    pub fn contact_uri(&self) -> String {
        let c = self.header("Contact").unwrap();
        c[c.find('<').unwrap() + 1..c.find('>').unwrap()].to_owned()
    }

    /// `;expires=` of the first Contact.
    pub fn contact_expires(&self) -> Option<u32> {
        let c = self.header("Contact")?;
        c.split(';')
            .find_map(|p| p.trim().strip_prefix("expires="))
            .map(|v| v.parse().unwrap())
    }

    /// A response to this request, echoing Via/From/To/Call-ID/CSeq, plus `extra` header lines.
    pub fn response(&self, status: u16, reason: &str, extra: &[String]) -> Vec<u8> {
        let mut r = format!("SIP/2.0 {status} {reason}\r\n");
        for name in ["Via", "From"] {
            r.push_str(&format!("{name}: {}\r\n", self.header(name).unwrap()));
        }
        r.push_str(&format!("To: {};tag=srv1\r\n", self.header("To").unwrap()));
        for name in ["Call-ID", "CSeq"] {
            r.push_str(&format!("{name}: {}\r\n", self.header(name).unwrap()));
        }
        for e in extra {
            r.push_str(e);
            r.push_str("\r\n");
        }
        r.push_str("Content-Length: 0\r\n\r\n");
        r.into_bytes()
    }
}
