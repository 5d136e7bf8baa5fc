//! The `yetifs` command.
use clap::Parser;

use yetifs::cli::{Cli, Command};

fn main() {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,fuser::mnt=error"),
    )
    .init();
    let cli = Cli::parse();
    if let Command::Mount(args) = &cli.command {
        if args.daemon && !yetifs::daemon::is_child() {
            let args: Vec<_> = std::env::args_os().skip(1).collect();
            match yetifs::daemon::spawn_and_wait(&args) {
                Ok(code) => std::process::exit(code),
                Err(e) => {
                    eprintln!("yetifs: cannot start the background mount: {e}");
                    std::process::exit(1);
                }
            }
        }
    }
    let result = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime.block_on(async {
                match cli.command {
                    Command::Serve(args) => yetifs::emulator::run(args).await,
                    Command::Mount(args) => yetifs::mount_cmd::run(args).await,
                    Command::Demo(args) => yetifs::demo::run(args).await,
                }
            })
        });
    if let Err(e) = result {
        eprintln!("yetifs: {e:#}");
        std::process::exit(1);
    }
}
