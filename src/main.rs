//! The `yetifs` command.
use clap::Parser;

use yetifs::cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(yetifs::emulator::run(args)),
    }
}
