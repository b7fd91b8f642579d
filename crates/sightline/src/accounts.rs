//! `sightline user …` and `sightline key …`: manage users and API keys offline, directly on
//! the configured store (the SQLite file in the data directory, or PostgreSQL), so scripts
//! and CI get credentials without a browser or a running node. Every change is audited with
//! the actor `cli`.

use std::io::BufRead as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use sightline_auth::{Actor, Auth, KeyRequest};
use sightline_model::{Clock, Role, Scope};

use crate::StoreArgs;

/// User management.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. Without --password-stdin a strong password is generated and printed once.
    Add {
        /// Login name.
        username: String,
        /// viewer (alias manager), engineer, approver or admin.
        #[arg(long, default_value = "viewer")]
        role: Role,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        config: StoreArgs,
    },
    /// List users.
    List {
        #[command(flatten)]
        config: StoreArgs,
    },
    /// Disable a user: logins are refused and their sessions end.
    Disable {
        /// Login name.
        username: String,
        #[command(flatten)]
        config: StoreArgs,
    },
    /// Re-enable a disabled user.
    Enable {
        /// Login name.
        username: String,
        #[command(flatten)]
        config: StoreArgs,
    },
    /// Set a user's password (read from standard input, or generated and printed once);
    /// the user's sessions end.
    Passwd {
        /// Login name.
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        config: StoreArgs,
    },
    /// Change a user's role.
    Role {
        /// Login name.
        username: String,
        /// The new role.
        role: Role,
        #[command(flatten)]
        config: StoreArgs,
    },
}

/// API-key management.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key and print it once (it cannot be shown again).
    Create {
        /// A label, e.g. the producer's name.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Comma-separated scopes: ingest:events, ingest:metrics, ingest:topics, read.
        #[arg(long, default_value = "ingest:events,ingest:metrics")]
        scopes: String,
        /// Source networks allowed to use the key (CIDR, repeatable); default any.
        #[arg(long = "allow-ip")]
        allowed_ips: Vec<String>,
        /// Requests per minute (default: auth.api_key_rate_per_minute).
        #[arg(long)]
        rate_per_minute: Option<u32>,
        /// Print only the key (for scripts: `export SIGHTLINE_API_KEY=$(sightline key create --quiet)`).
        #[arg(long, short)]
        quiet: bool,
        #[command(flatten)]
        config: StoreArgs,
    },
    /// List API keys (never their secrets).
    List {
        #[command(flatten)]
        config: StoreArgs,
    },
    /// Revoke an API key by id.
    Revoke {
        /// The key's id (the part after `slk_`, before the second `_`).
        id: String,
        #[command(flatten)]
        config: StoreArgs,
    },
}

async fn open(config: &StoreArgs) -> anyhow::Result<Auth> {
    let config = config.load()?;
    let (store, _) = sightline_api::open_store(&config)
        .await
        .context("opening the store")?;
    Ok(Auth::new(config.auth, store, Some(&config.data_dir), Clock::system()).await?)
}

fn read_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((sightline_auth::opaque::random_secret(18), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok((line.trim_end_matches(['\n', '\r']).to_owned(), false))
}

#[allow(clippy::print_stdout)] // the commands' output
pub async fn user(command: UserCommand) -> anyhow::Result<ExitCode> {
    let cli = Actor::cli();
    match command {
        UserCommand::Add {
            username,
            role,
            password_stdin,
            config,
        } => {
            let auth = open(&config).await?;
            let (password, generated) = read_password(password_stdin)?;
            let user = auth.create_user(&username, &password, role, &cli).await?;
            println!("created {} ({})", user.username, user.role);
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::List { config } => {
            let auth = open(&config).await?;
            for u in auth.list_users().await? {
                let state = if u.disabled { "disabled" } else { "active" };
                println!("{:<24} {:<9} {state}", u.username, u.role.as_str());
            }
        }
        UserCommand::Disable { username, config } => {
            set_disabled(&open(&config).await?, &username, true).await?;
        }
        UserCommand::Enable { username, config } => {
            set_disabled(&open(&config).await?, &username, false).await?;
        }
        UserCommand::Passwd {
            username,
            password_stdin,
            config,
        } => {
            let auth = open(&config).await?;
            let (password, generated) = read_password(password_stdin)?;
            auth.update_user(&username, None, None, Some(&password), &cli)
                .await?;
            println!("password of {username} changed; its sessions are ended");
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::Role {
            username,
            role,
            config,
        } => {
            let auth = open(&config).await?;
            let user = auth
                .update_user(&username, Some(role), None, None, &cli)
                .await?;
            println!("{} is now {}", user.username, user.role);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout)] // the command's output
async fn set_disabled(auth: &Auth, username: &str, disabled: bool) -> anyhow::Result<()> {
    let user = auth
        .update_user(username, None, Some(disabled), None, &Actor::cli())
        .await?;
    let state = if user.disabled { "disabled" } else { "active" };
    println!("{} is now {state}", user.username);
    Ok(())
}

#[allow(clippy::print_stdout)] // the commands' output
pub async fn key(command: KeyCommand) -> anyhow::Result<ExitCode> {
    let cli = Actor::cli();
    match command {
        KeyCommand::Create {
            name,
            scopes,
            allowed_ips,
            rate_per_minute,
            quiet,
            config,
        } => {
            let auth = open(&config).await?;
            let request = KeyRequest {
                name,
                scopes: Scope::parse_list(&scopes).map_err(|e| anyhow::anyhow!("--{e}"))?,
                allowed_ips,
                rate_per_minute,
            };
            let created = auth.create_key(request, &cli).await?;
            if quiet {
                println!("{}", created.token);
            } else {
                let scopes: Vec<&str> = created.key.scopes.iter().map(|s| s.as_str()).collect();
                println!(
                    "created API key {} ({}) with scopes {}",
                    created.key.id,
                    created.key.name,
                    scopes.join(",")
                );
                println!("key (shown once): {}", created.token);
            }
        }
        KeyCommand::List { config } => {
            let auth = open(&config).await?;
            for k in auth.list_keys().await? {
                let scopes: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
                let state = if k.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{:<16} {:<24} {:<32} {state}",
                    k.id,
                    k.name,
                    scopes.join(",")
                );
            }
        }
        KeyCommand::Revoke { id, config } => {
            let auth = open(&config).await?;
            auth.revoke_key(&id, &cli).await?;
            println!("revoked {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
