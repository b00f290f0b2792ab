//! sipreg: SIP client registration (outgoing REGISTER) with SIP.js `Registerer`
//! semantics, a sans-IO core, one worker thread and a C ABI.

pub mod core;
pub mod error;
pub mod ffi;
pub mod log;
pub mod runtime;

pub use error::Error;
