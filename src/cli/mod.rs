//! The command line of `yetifs` (clap derive). Each subcommand's arguments live with the code
//! that runs it.
pub mod config;
pub mod demo;
pub mod fetch;
pub mod generate;
pub mod mount;
pub mod place;
pub mod progress;
pub mod settings;
pub mod share;
pub mod status;
pub mod sync;
use crate::cli::config::ConfigArgs;
use crate::cli::demo::DemoArgs;
use crate::cli::fetch::FetchArgs;
use crate::cli::generate::{CompletionsArgs, ManArgs};
use crate::cli::mount::MountArgs;
use crate::cli::share::ShareArgs;
use crate::cli::status::StatusArgs;
use crate::cli::sync::SyncArgs;
use crate::emulator::ServeArgs;
use crate::system::logging::LogOptions;

/// yetifs: mount a YetiShare File Upload API v2 account as a local directory.
#[derive(Debug, clap::Parser)]
#[command(name = "yetifs", version = env!("YETIFS_VERSION"), about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log more: -v debug, -vv trace (RUST_LOG, when set, wins: e.g. RUST_LOG=yetifs=trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, display_order = 100)]
    pub verbose: u8,
    /// Log less: -q warnings and errors only, -qq errors only
    #[arg(
        short,
        long,
        global = true,
        action = clap::ArgAction::Count,
        conflicts_with = "verbose",
        display_order = 101
    )]
    pub quiet: u8,
    /// Append log lines to FILE instead of the terminal (for --daemon: instead of
    /// CACHE_DIR/yetifs.log)
    #[arg(long, global = true, value_name = "FILE", display_order = 102)]
    pub log_file: Option<std::path::PathBuf>,
}

impl Cli {
    /// The logging the command line asks for.
    pub fn log_options(&self) -> LogOptions {
        LogOptions {
            verbose: self.verbose,
            quiet: self.quiet,
            file: self.log_file.clone(),
        }
    }

    /// The level a command logs at without `-v` or `-q`: what a person at a terminal needs.
    /// `demo`, `status`, `sync`, `fetch`, `share` and `config` speak for themselves, so only
    /// warnings show.
    pub fn default_level(&self) -> log::LevelFilter {
        match self.command {
            Command::Demo(_)
            | Command::Status(_)
            | Command::Sync(_)
            | Command::Fetch(_)
            | Command::Share(_)
            | Command::Config(_) => log::LevelFilter::Warn,
            _ => log::LevelFilter::Info,
        }
    }
}

/// The subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the API v2 emulator (prints its URL and keys, serves until SIGINT/SIGTERM).
    Serve(ServeArgs),
    /// Mount an account: `yetifs mount [NAME:] MOUNTPOINT` (foreground unless --daemon).
    Mount(MountArgs),
    /// Show what a mount is doing: uploads, cache use, API requests, reachability.
    Status(StatusArgs),
    /// Wait until everything a mount has not uploaded yet (under PATH) is on the server.
    Sync(SyncArgs),
    /// Have the server fetch URLs into a folder (remote upload), following them until stored.
    Fetch(FetchArgs),
    /// Print share links of files and folders; set a folder's sharing level and password.
    Share(ShareArgs),
    /// Try yetifs without an account: an emulator with sample content, mounted.
    Demo(DemoArgs),
    /// Named remotes in config.toml: add (keys checked, file kept private), list, show, remove.
    Config(ConfigArgs),
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Print the manual page yetifs(1), or write every page into a directory.
    #[command(hide = true)]
    Man(ManArgs),
}
