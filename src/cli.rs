//! The command line of `yetifs` (clap derive). Each subcommand's arguments live with the code
//! that runs it.
use crate::demo::DemoArgs;
use crate::emulator::ServeArgs;
use crate::generate_cmd::{CompletionsArgs, ManArgs};
use crate::mount_cmd::MountArgs;
use crate::status_cmd::StatusArgs;

/// yetifs: mount a YetiShare File Upload API v2 account as a local directory.
#[derive(Debug, clap::Parser)]
#[command(name = "yetifs", version = env!("YETIFS_VERSION"), about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
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
    /// Try yetifs without an account: an emulator with sample content, mounted.
    Demo(DemoArgs),
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Print the manual page yetifs(1), or write every page into a directory.
    #[command(hide = true)]
    Man(ManArgs),
}
