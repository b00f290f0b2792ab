//! Every response-side parser on the same untrusted bytes (see
//! tests/support/parsers.rs for the entry points and the properties checked):
//! only panics (and sanitizer findings) count as failures.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/parsers.rs"]
mod parsers;

fuzz_target!(|data: &[u8]| {
    parsers::exercise(data);
});
