//! A scripted registrar (decoded from the bytes: 200s, 200-then-close,
//! closes, 401s, 503s with Retry-After, 423s, silence) answers one
//! registerer left alone for 30 simulated minutes, on the endpoint and on
//! the core; a minute with more REGISTERs than the bound panics (see
//! tests/support/storm.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../tests/support/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../../tests/support/sim.rs"]
mod sim;
#[path = "../../tests/support/storm.rs"]
mod storm;
#[allow(dead_code)]
#[path = "../../tests/support/wire.rs"]
mod wire;

fuzz_target!(|data: &[u8]| {
    storm::run_bytes(data);
});
