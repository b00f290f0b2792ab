//! The sans-IO protocol core: no sockets, threads or clocks; `now` comes in as an
//! argument and bytes, events and deadlines come out.

pub mod compact;
pub mod contact_list;
pub mod credentials;
pub mod digest;
pub mod endpoint;
pub mod failure;
pub mod id_table;
pub mod idhash;
pub mod keepalive;
mod lexer;
pub mod message;
pub mod options;
mod own_text;
pub mod rand;
pub mod redact;
pub mod refresh;
pub mod registerer;
pub mod request;
pub mod routing;
pub mod shared_text;
mod short_text;
pub mod stun;
pub mod targets;
pub mod transaction;
pub mod uri;
