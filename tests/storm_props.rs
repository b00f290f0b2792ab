//! No storm: whatever a registrar does — 200s with or without closing the
//! connection, closes, 401s, 503s with or without Retry-After, 423s,
//! silence — a registerer left alone (one `register()`, no further API
//! call) sends a bounded number of REGISTERs per minute.
//!
//! The bound and why it holds: tests/support/storm.rs.

mod support;

use proptest::prelude::*;
use support::storm::{run_core, run_endpoint, Step, BOUND_PER_MINUTE};

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (60u32..3600).prop_map(Step::Ok),
        2 => (60u32..3600).prop_map(Step::OkThenClose),
        1 => Just(Step::Close),
        2 => Just(Step::Challenge),
        1 => prop_oneof![Just(403u16), Just(404), Just(480), Just(500), Just(503), Just(603)]
            .prop_map(Step::Status),
        1 => ((500u16..504), 0u32..20).prop_map(|(s, ra)| Step::RetryAfter(s, ra)),
        1 => (0u32..100_000).prop_map(Step::TooBrief),
        1 => Just(Step::Silent),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn a_registerer_left_alone_never_storms(
        transport in prop_oneof![Just("udp"), Just("tcp"), Just("tls"), Just("ws")],
        script in prop::collection::vec(step(), 1..12),
    ) {
        let (worst, connections) = run_endpoint(transport, script.clone(), 30);
        prop_assert!(
            worst <= BOUND_PER_MINUTE,
            "{transport}: {worst} REGISTERs in one minute with {script:?}"
        );
        // Every connection carries at least one REGISTER, so the same bound
        // holds for connections; the target's rate limit caps them anyway.
        prop_assert!(connections <= 30 * BOUND_PER_MINUTE, "{connections} connections");
    }

    #[test]
    fn the_core_registerer_left_alone_never_storms(
        tcp in any::<bool>(),
        script in prop::collection::vec(step(), 1..12),
    ) {
        let worst = run_core(&script, tcp, 30);
        prop_assert!(
            worst <= BOUND_PER_MINUTE,
            "{worst} REGISTERs in one minute with {script:?} (tcp: {tcp})"
        );
    }
}

#[test]
fn the_worst_scripts_known_stay_under_the_bound() {
    let cases = [
        vec![Step::OkThenClose(600)],
        vec![Step::Close],
        vec![Step::RetryAfter(503, 1)],
        vec![Step::Challenge],
        vec![Step::Challenge, Step::OkThenClose(60)],
        vec![
            Step::TooBrief(700),
            Step::TooBrief(800),
            Step::TooBrief(900),
            Step::Ok(60),
        ],
        vec![Step::Status(500)],
        vec![Step::Silent],
    ];
    for script in cases {
        for transport in ["udp", "tcp"] {
            let (worst, _) = run_endpoint(transport, script.clone(), 60);
            println!("{transport} {script:?}: at most {worst} REGISTERs in a minute");
            assert!(worst <= BOUND_PER_MINUTE, "{transport} {script:?}: {worst}");
            let worst = run_core(&script, transport == "tcp", 60);
            assert!(
                worst <= BOUND_PER_MINUTE,
                "core {transport} {script:?}: {worst}"
            );
        }
    }
}

/// The fuzz target's decoder on a few byte strings (so it is compiled and run here too).
#[test]
fn the_fuzz_decoder_runs() {
    support::storm::run_bytes(&[1, 1, 0, 60, 3, 0, 0, 1, 0, 90]);
    support::storm::run_bytes(&[0, 5, 0, 1, 7, 0, 0]);
    support::storm::run_bytes(&[]);
}
