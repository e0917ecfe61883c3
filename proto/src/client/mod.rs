//! What every client of kube9d shares: tokens ([`token`]), the client config file
//! ([`config`]) and dialing with TLS and a bearer token ([`tls`]).

pub mod config;
pub mod tls;
pub mod token;

pub use config::ClientConfig;
pub use tls::{AuthChannel, Bearer};
pub use token::{Role, Token};
