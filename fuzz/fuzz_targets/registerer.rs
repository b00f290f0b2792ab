//! One core `Registerer` driven by a byte script (see tests/support/ops.rs for
//! the decoder and the invariants); every invariant violation panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/ops.rs"]
mod ops;

fuzz_target!(|data: &[u8]| {
    ops::run_bytes(data);
});
