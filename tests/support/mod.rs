//! Shared helpers for the integration tests.
#![allow(dead_code)]

pub mod capi;
pub mod contact;
pub mod counting;
pub mod harness;
pub mod hostile_peers;
pub mod kamailio;
pub mod logs;
pub mod nat_capi;
pub mod nat_peers;
pub mod rng;
pub mod sim;
pub mod sipp;
pub mod storm;
pub mod wait;
pub mod wire;
