//! Shared helpers for the integration tests.
#![allow(dead_code)]

pub mod capi;
pub mod harness;
pub mod kamailio;
pub mod wire;
