//! `serve` and `token`: the service's face on the command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};

use repo::serve::tokens::{Role, TokenStore};
use repo::serve::ServeOptions;

use super::context::GlobalOpts;
use super::exit;
use super::fmt::print_json;

/// `serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address and port to listen on (default: [service] listen, else 127.0.0.1:8440)
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// PEM certificate chain for HTTPS (with --tls-key)
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback address (tokens then cross the network in clear)
    #[arg(long)]
    insecure_http: bool,
    /// Log format on stderr
    #[arg(long, value_enum, default_value = "human")]
    pub log_format: LogFormat,
}

/// How the service logs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One line per event
    Human,
    /// One JSON object per event (for journald or a log shipper)
    Json,
}

/// `token`.
#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    cmd: TokenCmd,
}

#[derive(clap::Subcommand, Debug)]
enum TokenCmd {
    /// Create a token; it is printed once and stored only as a hash
    Create {
        /// A name for it (shown in the operation log)
        #[arg(long)]
        name: String,
        /// viewer (read), operator (also back up, restore, cancel) or admin (also forget, tokens)
        #[arg(long, default_value = "viewer")]
        role: String,
    },
    /// List tokens (names, roles, creation times)
    List,
    /// Revoke a token by name; the service refuses it at once
    Revoke {
        /// Its name
        name: String,
    },
}

fn store() -> Result<TokenStore> {
    Ok(TokenStore::at(TokenStore::default_path().context(
        "cannot find a state directory: set HOME or XDG_STATE_HOME",
    )?))
}

pub fn token(g: &GlobalOpts, a: TokenArgs) -> Result<i32> {
    let s = store()?;
    match a.cmd {
        TokenCmd::Create { name, role } => {
            let (info, token) = s.create(&name, Role::parse(&role)?)?;
            if g.json {
                print_json(&serde_json::json!({
                    "name": info.name, "role": info.role, "token": token,
                }))?;
            } else {
                println!("{token}");
                eprintln!(
                    "token {:?} ({}) created; it is not shown again",
                    info.name,
                    info.role.as_str()
                );
            }
        }
        TokenCmd::List => {
            let list = s.list()?;
            if g.json {
                print_json(&list)?;
            } else if list.is_empty() {
                println!("no tokens (create one with `repo token create --name NAME --role ROLE`)");
            } else {
                for t in list {
                    println!(
                        "{:<24} {:<9} {}",
                        t.name,
                        t.role.as_str(),
                        super::fmt::local_time(&t.created)
                    );
                }
            }
        }
        TokenCmd::Revoke { name } => {
            if !s.revoke(&name)? {
                anyhow::bail!("no token {name:?}");
            }
            eprintln!("token {name:?} revoked");
        }
    }
    Ok(exit::OK)
}

pub fn serve(g: &GlobalOpts, a: ServeArgs) -> Result<i32> {
    let cfg = super::plans::load(g)?;
    let state_root = repo::plan::state::state_root().context("cannot find a state directory")?;
    let tls = a.tls_cert.zip(a.tls_key);
    repo::serve::run(
        cfg,
        ServeOptions {
            listen: a.listen,
            insecure_http: a.insecure_http,
            tls,
            state_root,
            cache_root: g.cache_root()?,
            tokens: store()?,
        },
    )?;
    Ok(exit::OK)
}
