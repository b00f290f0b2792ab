//! The instruction count of one answered OPTIONS ping, on the simulated
//! network: a registered contact receives 10 000 pings shaped as
//! Kamailio's nathelper sends them, each answered 200 by the library.
//! Ignored in normal runs; `bash examples/ping-cost.sh` runs it under
//! callgrind and prints the instructions per ping spent in
//! `Endpoint::datagram` (the figure behind the ping row of the benchmark).

mod support;

use sipreg::core::options::{RegistererOptions, UserAgentConfig};
use sipreg::core::registerer::State;
use support::sim::{ms, secs, Behaviour, Sim};

/// Pings sent (the script divides by this).
const PINGS: usize = 10_000;

#[test]
#[ignore = "a measurement: run by examples/ping-cost.sh under callgrind"]
fn ten_thousand_pings_each_answered() {
    let mut s = Sim::new();
    s.peer("127.0.0.1:5060", Behaviour::Ok { expires: 3600 }, ms(2));
    let aor = "sip:user500000@127.0.0.1";
    let mut config = UserAgentConfig::new(aor).unwrap();
    config.set_password(Some("pw")).unwrap();
    let cfg = config.clone();
    let ua = s.user_agent(aor, move |c| *c = cfg);
    let options = RegistererOptions {
        registrar: Some("sip:127.0.0.1:5060".into()),
        ..Default::default()
    };
    let r = s.registerer(ua, &config, options);
    s.register(r);
    s.run(secs(1));
    assert_eq!(s.state(r), State::Registered);
    let flow = s.ep.flow_of(r).unwrap();
    let contact = s.ep.registerer(r).unwrap().contact().unwrap();
    let uri = contact
        .trim_start_matches('<')
        .split(['>', ';'])
        .next()
        .unwrap()
        .to_owned();
    let registrar = "127.0.0.1:5060".parse().unwrap();
    for i in 0..PINGS {
        let ping = format!(
            "OPTIONS {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=0\r\n\
From: sip:pinger@127.0.0.1;tag=uloc-1-69351a2c-4a0d-{i:x}-3a1f2d\r\nTo: {uri}\r\n\
Call-ID: 5e1a-{i}-2d3f@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        s.request_in(flow, registrar, ping.as_bytes());
        // Time passes as between the registrar's bursts (answer budgets refill).
        if i % 1000 == 999 {
            s.run(ms(200));
        }
    }
    let answers = s.answers_since(0);
    assert_eq!(answers.len(), PINGS, "every ping answered");
    assert!(answers.iter().all(|a| a.status() == 200));
}
