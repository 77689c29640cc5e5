//! `depthpilot keygen`: a CURVE key pair for remote links (issue 20). See
//! `depthpilot_runtime::curve` for the files and the allow-lists.

use crate::{EXIT_BAD_INPUT, Failure};
use depthpilot_runtime::curve::{self, KeyError};
use std::path::PathBuf;

/// Arguments of `depthpilot keygen`.
#[derive(clap::Args, Debug)]
pub struct KeygenArgs {
    /// The key's name: writes NAME.key (secret, mode 0600) and NAME.pub (public). A server's
    /// pair is named `server`; a client's names it in the server's messages (e.g. vision-host).
    #[arg(long)]
    pub name: String,
    /// Directory to write to (created if missing).
    #[arg(long, default_value = "keys")]
    pub dir: PathBuf,
    /// Replace an existing pair of that name (the old files are removed first).
    #[arg(long)]
    pub force: bool,
}

pub fn keygen(args: &KeygenArgs) -> Result<(), Failure> {
    let (secret, public, pair) =
        curve::write_keypair(&args.dir, &args.name, args.force).map_err(|e| Failure {
            code: match e {
                KeyError::BadName(_) | KeyError::Exists { .. } => EXIT_BAD_INPUT,
                _ => 1,
            },
            error: e.into(),
        })?;
    println!(
        "secret key: {} (mode 0600: keep it on this host)",
        secret.display()
    );
    println!("public key: {} {}", public.display(), pair.public);
    println!(
        "a server needs its pair as KEYS/server.key and KEYS/server.pub; allow a client on a \
         role by copying its .pub to KEYS/allow/ROLE/ (roles: {})",
        curve::DOMAINS.join(", ")
    );
    Ok(())
}
